"""Real gzipped tarballs laid out like GitHub's (`owner-repo-sha/…`), hostile members on demand."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TarMember:
    """An extra archive member, usually a hostile one; `name` is used verbatim (no prefix)."""

    name: str
    kind: str = "file"  # file | symlink | hardlink | dir
    data: bytes = b""
    linkname: str = ""
    size: int | None = None  # declared size for `file`; zeros are streamed when > len(data)


def symlink(name: str, target: str = "/etc/passwd") -> TarMember:
    return TarMember(name, "symlink", linkname=target)


def hardlink(name: str, target: str = "/etc/passwd") -> TarMember:
    return TarMember(name, "hardlink", linkname=target)


def raw_file(name: str, data: bytes = b"owned\n") -> TarMember:
    """A file whose name is not sanitised: `../escape.txt`, `/tmp/abs.txt`..."""
    return TarMember(name, "file", data=data)


def huge_file(name: str, size: int) -> TarMember:
    """A file of `size` zero bytes (compresses to almost nothing: a zip bomb in miniature)."""
    return TarMember(name, "file", size=size)


def github_prefix(owner: str, repo: str, sha: str) -> str:
    """Top-level folder GitHub puts in repository tarballs."""
    return f"{owner}-{repo}-{sha[:7]}"


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left)
        buffer[:count] = b"\0" * count
        self._left -= count
        return count


def _add(archive: tarfile.TarFile, member: TarMember) -> None:
    info = tarfile.TarInfo(member.name)
    info.mtime = 1_700_000_000
    if member.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(info)
    elif member.kind in ("symlink", "hardlink"):
        info.type = tarfile.SYMTYPE if member.kind == "symlink" else tarfile.LNKTYPE
        info.linkname = member.linkname
        archive.addfile(info)
    elif member.size is not None and member.size > len(member.data):
        info.size = member.size
        archive.addfile(info, io.BufferedReader(_Zeros(member.size)))
    else:
        info.size, info.mode = len(member.data), 0o644
        archive.addfile(info, io.BytesIO(member.data))


def files_of_directory(root: Path) -> dict[str, bytes]:
    """Every regular file under `root`, keyed by its POSIX path relative to `root`."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def build_tarball(
    prefix: str,
    files: Mapping[str, bytes] | Path,
    extra: Iterable[TarMember] = (),
) -> bytes:
    """A .tar.gz with `prefix/` as its only top folder, then the `extra` members verbatim."""
    contents = files_of_directory(files) if isinstance(files, Path) else dict(files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        _add(archive, TarMember(f"{prefix}/", "dir"))
        dirs = sorted({str(d) for p in contents for d in Path(p).parents} - {"."})
        for directory in dirs:
            _add(archive, TarMember(f"{prefix}/{directory}/", "dir"))
        for path, data in sorted(contents.items()):
            _add(archive, TarMember(f"{prefix}/{path}", data=data))
        for member in extra:
            _add(archive, member)
    return buffer.getvalue()
