"""Environments built from an allowlist: nothing of the bot's own environment leaks by default."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

#: PATH inside the sandbox after the job's own directories; never the bot's PATH.
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

#: Prefixes no variable handed to untrusted code may carry, whoever asks.
DENIED_PREFIXES = ("GITHUB_", "CONNECTOR_GATE_", "AWS_", "PG", "DATABASE_")

#: Variables of the bot's environment that point at files the sandbox must not see.
KEY_FILE_VARIABLES = ("GITHUB_PRIVATE_KEY_PATH", "CONNECTOR_GATE_PRIVATE_KEY_PATH")

#: What the trusted installer (pip / uv) may see: its own configuration, proxies, CA bundles.
_INSTALLER_PREFIXES = ("PIP_", "UV_")
_INSTALLER_NAMES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


def _denied(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(DENIED_PREFIXES) or any(
        word in upper for word in ("SECRET", "TOKEN", "PASSWORD", "PRIVATE_KEY")
    )


def sandbox_env(
    *,
    home: Path,
    path_prefix: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
    importable: Path | None = None,
) -> dict[str, str]:
    """The complete environment of a sandboxed process; `importable` goes on PYTHONPATH."""
    env = {
        "PATH": ":".join([*path_prefix, SAFE_PATH]),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if importable is not None:
        # The connector's own package must import from its root, as `pytest` users expect.
        env["PYTHONPATH"] = str(importable)
    if path_prefix:
        env["VIRTUAL_ENV"] = str(Path(path_prefix[0]).parent)
    for name, value in (extra or {}).items():
        if _denied(name):
            raise ValueError(f"{name} may not be passed to sandboxed code")
        env[name] = value
    return env


def installer_env() -> dict[str, str]:
    """Environment of the package installer: its configuration, nothing of the bot's secrets."""
    return {
        name: value
        for name, value in os.environ.items()
        if (name in _INSTALLER_NAMES or name.startswith(_INSTALLER_PREFIXES)) and not _denied(name)
    }


def key_files_to_hide() -> tuple[str, ...]:
    """Files named by the bot's environment that hold keys, to cover inside the sandbox."""
    paths = []
    for name in KEY_FILE_VARIABLES:
        value = os.environ.get(name, "")
        if value and os.path.exists(value):
            paths.append(os.path.realpath(value))
    return tuple(paths)
