"""Hostile tarballs: every trick is refused, named, and never followed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from checks.archive import ArchiveLimits, extract_tarball
from checks.errors import UnsafeInputError

TOP = "acme-connectors-0123abc"


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _tarball(tmp_path: Path, build: object) -> Path:
    path = tmp_path / "repo.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, TOP, type=tarfile.DIRTYPE, mode=0o755)
        _add(tar, f"{TOP}/connectors/ok/connector.yaml", b"name: ok\n")
        build(tar)  # type: ignore[operator]
    return path


@pytest.mark.parametrize(
    ("build", "refused_path", "reason"),
    [
        (
            lambda t: _add(
                t, f"{TOP}/connectors/ok/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"
            ),
            "connectors/ok/passwd",
            "absolute path",
        ),
        (
            lambda t: _add(
                t, f"{TOP}/connectors/ok/up", type=tarfile.SYMTYPE, linkname="../../../etc"
            ),
            "connectors/ok/up",
            "leaving the repository",
        ),
        (lambda t: _add(t, f"{TOP}/../../escape.txt", b"x"), "../../escape.txt", "leaves"),
        (lambda t: _add(t, "/etc/cron.d/evil", b"x"), "etc/cron.d/evil", "absolute path"),
        (
            lambda t: _add(t, f"{TOP}/hard", type=tarfile.LNKTYPE, linkname="/etc/shadow"),
            "hard",
            "absolute",
        ),
        (
            lambda t: _add(t, f"{TOP}/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
            "dev",
            "special file",
        ),
    ],
)
def test_hostile_members_are_refused_with_a_reason(
    tmp_path: Path, build: object, refused_path: str, reason: str
) -> None:
    out = tmp_path / "out"
    extraction = extract_tarball(_tarball(tmp_path, build), out)
    assert [(r.path, reason in r.reason) for r in extraction.refused] == [(refused_path, True)]
    assert (out / "connectors/ok/connector.yaml").read_text() == "name: ok\n"
    assert not (tmp_path / "escape.txt").exists()
    assert not any(p.is_symlink() for p in out.rglob("*"))


def test_link_inside_the_repository_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    archive = _tarball(
        tmp_path,
        lambda t: _add(
            t, f"{TOP}/connectors/ok/alias.yaml", type=tarfile.SYMTYPE, linkname="connector.yaml"
        ),
    )
    extraction = extract_tarball(archive, out)
    assert extraction.refused == ()
    assert (out / "connectors/ok/alias.yaml").read_text() == "name: ok\n"


def test_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    archive = _tarball(tmp_path, lambda t: _add(t, f"{TOP}/big.bin", b"0" * 2048))
    extraction = extract_tarball(archive, tmp_path / "out", ArchiveLimits(max_file_bytes=1024))
    assert extraction.refused[0].path == "big.bin"
    assert "cap" in extraction.refused[0].reason
    assert not (tmp_path / "out" / "big.bin").exists()


def test_archive_expanding_past_the_total_cap_is_refused_whole(tmp_path: Path) -> None:
    def many(t: tarfile.TarFile) -> None:
        for i in range(10):
            _add(t, f"{TOP}/f{i}", b"0" * 1000)

    with pytest.raises(UnsafeInputError, match="refused whole"):
        extract_tarball(
            _tarball(tmp_path, many), tmp_path / "out", ArchiveLimits(max_total_bytes=5000)
        )


def test_too_many_members_is_refused_whole(tmp_path: Path) -> None:
    def many(t: tarfile.TarFile) -> None:
        for i in range(20):
            _add(t, f"{TOP}/f{i}", b"x")

    with pytest.raises(UnsafeInputError, match="entries"):
        extract_tarball(_tarball(tmp_path, many), tmp_path / "out", ArchiveLimits(max_members=10))


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(UnsafeInputError, match="cannot read the repository archive"):
        extract_tarball(bad, tmp_path / "out")
