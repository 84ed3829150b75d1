"""The temporary directory tree a sandboxed job works in, and safe reading of what it wrote."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from checks.sandbox.isolation import UidPair

#: Largest output file read back (JUnit XML, k6 summary).
MAX_READ_BACK = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Workspace:
    """Directories of one job; owned by the sandbox uids when there are any."""

    root: Path
    """Top directory (owned by the bot, 0755), removed afterwards."""
    work: Path
    """Copy of the connector: the job's working directory."""
    home: Path
    """HOME of the code under test."""
    load_home: Path
    """HOME of the load generator."""
    out: Path
    """Read-back directory: the bot owns it, so the job can fill but not replace its files."""
    logs: Path
    """Logs of services, written through descriptors the launcher opens."""
    uids: UidPair | None
    """Who the job runs as; None when it runs as the bot's own uid."""


def _chown_tree(top: Path, uid: int) -> None:
    os.lchown(top, uid, uid)
    for base, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.lchown(os.path.join(base, name), uid, uid)


def _private_dir(path: Path, owner: int | None) -> Path:
    path.mkdir(mode=0o700)
    (path / "tmp").mkdir(mode=0o700)
    if owner is not None:
        _chown_tree(path, owner)
    return path


def _plain(out: Path, name: str) -> Path:
    if "/" in name or name.startswith("."):
        raise ValueError(f"file name {name!r} must be a plain file name")
    return out / name


def _precreate(out: Path, names: tuple[str, ...], owner: int | None) -> None:
    for name in names:
        target = _plain(out, name)
        target.touch(mode=0o600)
        if owner is not None:
            os.chown(target, owner, owner)


def _force_remove(root: Path) -> None:
    def unlock(_func: object, path: str, _exc: object) -> None:
        # The job may have made its own directories unreadable; take them back first.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            (shutil.rmtree if os.path.isdir(path) else os.unlink)(path)

    shutil.rmtree(root, onerror=unlock)
    shutil.rmtree(root, ignore_errors=True)


def _write_inputs(out: Path, inputs: Mapping[str, bytes]) -> None:
    for name, content in inputs.items():
        target = _plain(out, name)
        target.write_bytes(content)
        target.chmod(0o644)


@contextlib.contextmanager
def workspace(
    source: Path,
    uids: UidPair | None,
    outputs: tuple[str, ...],
    writer: int | None,
    inputs: Mapping[str, bytes] | None = None,
) -> Iterator[Workspace]:
    """Copy `source` into a fresh tree; remove everything afterwards, whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="connector-gate-sandbox-"))
    try:
        root.chmod(0o755)
        work = root / "work"
        shutil.copytree(source, work, symlinks=True)
        if uids is not None:
            _chown_tree(work, uids.code)
        code_owner, load_owner = (uids.code, uids.load) if uids else (None, None)
        out = root / "out"
        out.mkdir(mode=0o755)
        _precreate(out, outputs, writer)
        _write_inputs(out, inputs or {})
        logs = root / "logs"
        logs.mkdir(mode=0o700)
        yield Workspace(
            root=root,
            work=work,
            home=_private_dir(root / "home", code_owner),
            load_home=_private_dir(root / "load-home", load_owner),
            out=out,
            logs=logs,
            uids=uids,
        )
    finally:
        _force_remove(root)


def read_back(path: Path, cap: int = MAX_READ_BACK) -> bytes:
    """Read a file the job wrote, refusing symlinks and anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return b""
        return handle.read(cap)


def read_tail(path: Path, cap: int = 8192) -> str:
    """The last `cap` bytes of a log, decoded."""
    data = read_back(path, MAX_READ_BACK)
    return data[-cap:].decode("utf-8", "replace")
