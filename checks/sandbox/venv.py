"""The connector's own virtualenv: built from its pinned requirements, cached by their hash."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from checks.errors import ToolError, UnsafeInputError
from checks.process import run_process
from checks.sandbox.env import installer_env

#: Written last into a finished virtualenv; a directory without it is rebuilt.
COMPLETE_MARKER = ".connector-gate-complete"
#: Bumped when the way virtualenvs are built changes.
LAYOUT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class ConnectorVenv:
    """A ready virtualenv holding a connector's requirements."""

    path: Path
    """Its directory."""
    key: str
    """Cache key: hash of requirements, interpreter, index and layout version."""
    reused: bool
    """True when it came from the cache; False when built now."""
    installer: str
    """`uv` or `pip`."""
    build_s: float
    """Seconds spent building it (0 when reused)."""

    @property
    def bin_dir(self) -> Path:
        """Directory put first on PATH."""
        return self.path / "bin"


def _world_usable(path: Path) -> bool:
    """True when any uid can reach (and execute) `path`: every parent has o+x."""
    for part in (path, *path.parents):
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def sandbox_interpreter() -> Path:
    """A Python of our minor version that the unprivileged sandbox uid can run."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(getattr(sys, "_base_executable", sys.executable))
    candidates = [base, Path(sys.base_prefix) / "bin" / f"python{version}"]
    candidates += [Path(d) / f"python{version}" for d in ("/usr/local/bin", "/usr/bin")]
    for candidate in candidates:
        real = candidate.resolve()
        if real.is_file() and _world_usable(real):
            return real
    return base.resolve()


def unsafe_requirement_lines(text: str) -> list[tuple[int, str]]:
    """Lines that would make the install reach beyond the index or run local code."""
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("#") or line.startswith("--hash"):
            continue
        if line.startswith("-"):
            problems.append((number, f"option line `{line.split()[0]}` is not allowed"))
        elif "://" in line or " @ " in line or line.startswith((".", "/", "~")):
            problems.append((number, "only named, pinned packages from the index are allowed"))
    return problems


def default_cache_dir() -> Path:
    """Default place for cached virtualenvs (readable by the sandbox uid, writable by us only)."""
    return Path(tempfile.gettempdir()) / f"connector-gate-{os.geteuid()}"


def _prepare_cache(cache_dir: Path) -> Path:
    venvs = cache_dir / "venvs"
    venvs.mkdir(parents=True, exist_ok=True)
    for directory in (cache_dir, venvs):
        info = directory.stat()
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ToolError("venv", f"cache directory {directory} is not ours alone; refusing it")
        directory.chmod(0o755)
    return venvs


def venv_key(requirements: bytes, interpreter: Path, index_url: str) -> str:
    """Cache key of a virtualenv."""
    digest = hashlib.sha256()
    for part in (LAYOUT_VERSION, str(interpreter), sys.version.split()[0], index_url):
        digest.update(part.encode() + b"\x00")
    digest.update(hashlib.sha256(requirements).digest())
    return digest.hexdigest()[:32]


@contextlib.asynccontextmanager
async def _locked(lock_path: Path, timeout_s: float) -> AsyncIterator[None]:
    # Another worker may be building the same virtualenv: wait for it instead of racing.
    with open(lock_path, "a") as handle:  # noqa: ASYNC230 (opening a lock file does not block)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ToolError("venv", f"timed out waiting for {lock_path}") from None
                await asyncio.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _run_installer(argv: Sequence[str], timeout_s: float) -> None:
    tool = Path(argv[0]).name
    out = await run_process(argv, tool=tool, timeout_s=timeout_s, env=installer_env())
    if out.returncode != 0:
        raise ToolError(tool, f"exited with status {out.returncode}", stderr_tail=out.stderr_tail())


def _install_commands(
    target: Path, interpreter: Path, requirements: Path, index_url: str, hashed: bool
) -> tuple[str, list[list[str]]]:
    python = str(target / "bin" / "python")
    flags = ["--only-binary", ":all:", "-r", str(requirements)]
    flags += ["--index-url", index_url] if index_url else []
    flags += ["--require-hashes"] if hashed else []
    uv = shutil.which("uv")
    if uv:
        create = [uv, "venv", "--quiet", "--python", str(interpreter), str(target)]
        return "uv", [create, [uv, "pip", "install", "--quiet", "--python", python, *flags]]
    create = [str(interpreter), "-m", "venv", "--without-pip", str(target)]
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-input"]
    return "pip", [create, [*pip, *flags]]


async def ensure_venv(
    requirements: Path, *, cache_dir: Path | None, index_url: str = "", timeout_s: float = 600
) -> ConnectorVenv:
    """The cached virtualenv for `requirements`, built now if missing. Raises ToolError."""
    text = requirements.read_bytes()  # noqa: ASYNC240 (a small local file)
    problems = unsafe_requirement_lines(text.decode("utf-8", "replace"))
    if problems:
        line, reason = problems[0]
        raise UnsafeInputError(f"{requirements.name}:{line}: {reason}")
    interpreter = sandbox_interpreter()
    key = venv_key(text, interpreter, index_url)
    venvs = _prepare_cache(cache_dir or default_cache_dir())
    target = venvs / key
    async with _locked(venvs / f"{key}.lock", timeout_s):
        if (target / COMPLETE_MARKER).is_file():
            return ConnectorVenv(target, key, reused=True, installer="", build_s=0.0)
        return await _build(
            target, key, interpreter, requirements, index_url, b"--hash" in text, timeout_s
        )


async def _build(
    target: Path,
    key: str,
    interpreter: Path,
    requirements: Path,
    index_url: str,
    hashed: bool,
    timeout_s: float,
) -> ConnectorVenv:
    started = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)
    installer, commands = _install_commands(target, interpreter, requirements, index_url, hashed)
    try:
        for argv in commands:
            await _run_installer(argv, timeout_s)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / COMPLETE_MARKER).write_text(f"{installer}\n")
    return ConnectorVenv(target, key, False, installer, time.monotonic() - started)


def is_world_usable(path: Path) -> bool:
    """True when an unprivileged uid can reach `path` (the sandbox must run the venv)."""
    return _world_usable(path)
