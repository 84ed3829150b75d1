"""Finds, at run time, the strongest isolation this host allows, and the uids to run as."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from checks.errors import ToolError
from checks.process import run_process
from checks.sandbox.model import Isolation

LAUNCHER = Path(__file__).with_name("launcher.py")

#: First uid of the pool sandboxed code runs as (override: CONNECTOR_GATE_SANDBOX_UID_BASE).
DEFAULT_UID_BASE = 61000
#: Number of (service, load generator) uid pairs in the pool.
UID_POOL_PAIRS = 500

_NAMESPACES = ("--net", "--mount", "--pid", "--fork", "--mount-proc")
_USERNS = ("--user", "--map-root-user")

_detected: Isolation | None = None
_uid_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class UidPair:
    """Unprivileged uids for one job: the code under test, and the load generator."""

    code: int
    """Runs the connector's tests or service."""
    load: int
    """Runs k6, so the service cannot touch its results."""


def next_uid_pair() -> UidPair:
    """A uid pair for the next job; the pid spreads concurrent bot processes over the pool."""
    base = int(os.environ.get("CONNECTOR_GATE_SANDBOX_UID_BASE", DEFAULT_UID_BASE))
    slot = (os.getpid() * 7 + next(_uid_counter)) % UID_POOL_PAIRS
    return UidPair(code=base + 2 * slot, load=base + 2 * slot + 1)


def namespace_prefix(isolation: Isolation) -> tuple[str, ...]:
    """The `unshare` command line that wraps the launcher for `isolation`."""
    unshare = shutil.which("unshare") or "unshare"
    if isolation is Isolation.NETNS_UID:
        return (unshare, *_NAMESPACES, "--")
    if isolation is Isolation.NETNS_USERNS:
        return (unshare, *_USERNS, *_NAMESPACES, "--")
    return ()


def launcher_argv(isolation: Isolation) -> tuple[str, ...]:
    """Full command starting the launcher under `isolation` (isolated mode: no site, no cwd)."""
    return (*namespace_prefix(isolation), sys.executable, "-I", "-S", str(LAUNCHER))


async def _namespaces_work(isolation: Isolation) -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        probe = await run_process(
            [*namespace_prefix(isolation), sys.executable, "-I", "-S", "-c", "pass"],
            tool="unshare",
            timeout_s=20,
        )
    except ToolError:
        return False
    return probe.returncode == 0


async def _probe() -> Isolation:
    if os.geteuid() == 0:
        if await _namespaces_work(Isolation.NETNS_UID):
            return Isolation.NETNS_UID
        return Isolation.UID
    if await _namespaces_work(Isolation.NETNS_USERNS):
        return Isolation.NETNS_USERNS
    return Isolation.NONE


async def detect_isolation() -> Isolation:
    """The strongest isolation available here (probed once per process; a race probes twice)."""
    global _detected
    if _detected is None:
        _detected = await _probe()
    return _detected
