"""Typed jobs and outcomes of the sandbox that runs a connector's own code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

#: Placeholder in argument lists replaced by the directory whose files are read back.
OUT_PLACEHOLDER = "{out}"


class Isolation(StrEnum):
    """Which isolation was in force around the untrusted code."""

    NETNS_UID = "netns+uid"
    """Network, pid and mount namespaces; the code runs as a separate unprivileged uid."""
    NETNS_USERNS = "netns+userns"
    """The same namespaces inside an unprivileged user namespace (uid 0 without capabilities)."""
    UID = "uid"
    """A separate unprivileged uid and resource limits, but the host's network."""
    NONE = "none"
    """Resource limits only: same uid, host network."""

    @property
    def network_isolated(self) -> bool:
        """True when the code reaches loopback only."""
        return self in (Isolation.NETNS_UID, Isolation.NETNS_USERNS)


class LimitHit(StrEnum):
    """Which resource limit ended or broke the run."""

    WALL_CLOCK = "wall-clock time limit"
    CPU = "CPU time limit (RLIMIT_CPU)"
    MEMORY = "memory limit (RLIMIT_AS)"
    FILE_SIZE = "file size limit (RLIMIT_FSIZE)"
    PROCESSES = "process limit (RLIMIT_NPROC)"
    OPEN_FILES = "open files limit (RLIMIT_NOFILE)"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits applied to every process of a sandboxed job."""

    wall_s: float = 300.0
    """Wall-clock limit; the whole job is killed after it."""
    cpu_s: int = 300
    """CPU seconds per process (RLIMIT_CPU)."""
    memory_bytes: int = 2 * 1024**3
    """Address space per process (RLIMIT_AS)."""
    open_files: int = 256
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    processes: int = 256
    """Processes and threads of the sandbox uid (RLIMIT_NPROC)."""
    file_size_bytes: int = 256 * 1024**2
    """Largest file a process may write (RLIMIT_FSIZE)."""
    output_bytes: int = 1024**2
    """Captured stdout/stderr per stream; the tail is kept."""

    def rlimits(self) -> dict[str, int]:
        """The limits the launcher applies with setrlimit, by name."""
        return {
            "cpu_s": self.cpu_s,
            "memory_bytes": self.memory_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
            "file_size_bytes": self.file_size_bytes,
        }


@dataclass(frozen=True, slots=True)
class SandboxReport:
    """How a job was confined, for the check's output."""

    isolation: Isolation
    """Isolation in force."""
    limits: Limits
    """Limits applied."""
    hidden_paths: tuple[str, ...] = ()
    """Host files covered inside the sandbox (the App key...), shown by count only."""

    def describe(self) -> str:
        """One markdown line for check details."""
        network = "loopback only" if self.isolation.network_isolated else "host network"
        mib = self.limits.memory_bytes // 1024**2
        return (
            f"Sandbox: `{self.isolation}` ({network}); limits: {self.limits.wall_s:g} s wall, "
            f"{self.limits.cpu_s} s CPU, {mib} MiB memory, {self.limits.processes} processes, "
            f"{self.limits.file_size_bytes // 1024**2} MiB per file."
        )


@dataclass(frozen=True, slots=True)
class SandboxJob:
    """One command to run on a private copy of a connector."""

    argv: tuple[str, ...]
    """Command and arguments; `{out}` is replaced by the read-back directory."""
    source: Path
    """Connector directory; the job runs in a temporary copy of it."""
    limits: Limits = field(default_factory=Limits)
    """Resource limits."""
    path_prefix: tuple[str, ...] = ()
    """Directories put first on PATH (the connector's virtualenv)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables (checked against the deny list)."""
    outputs: tuple[str, ...] = ()
    """File names in `{out}` the job may write and the caller reads back."""


@dataclass(frozen=True, slots=True)
class SandboxOutcome:
    """What a sandboxed command left behind."""

    returncode: int
    """Exit status; 128 + signal number when a signal killed it; -1 after a wall-clock kill."""
    stdout: str
    """Captured standard output, scrubbed."""
    stderr: str
    """Captured standard error, scrubbed."""
    duration_s: float
    """Wall time."""
    report: SandboxReport
    """How it was confined."""
    limit_hit: LimitHit | None = None
    """The limit that ended it, when one visibly did."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Contents of the `outputs` it wrote (capped), by name."""


@dataclass(frozen=True, slots=True)
class LoadJob:
    """Start a connector's service, wait until ready, drive load at it, stop it."""

    source: Path
    """Connector directory; the service runs in a temporary copy of it."""
    service_argv: tuple[str, ...]
    """Command starting the service (its `{port}` already replaced)."""
    ready_url: str
    """Loopback URL polled until it answers 2xx."""
    load_argv: tuple[str, ...]
    """Load generator command; `{out}` is the read-back directory, relative paths the copy."""
    ready_timeout_s: float = 30.0
    """How long the service may take to become ready."""
    service_limits: Limits = field(default_factory=Limits)
    """Limits of the service (its wall_s is the limit of the whole job)."""
    load_limits: Limits = field(default_factory=Limits)
    """Limits of the load generator."""
    path_prefix: tuple[str, ...] = ()
    """Directories put first on PATH for the service."""
    service_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment of the service."""
    load_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment of the load generator."""
    outputs: tuple[str, ...] = ()
    """File names in `{out}` the load generator writes and the caller reads back."""
    inputs: Mapping[str, bytes] = field(default_factory=dict)
    """Files the caller puts in `{out}` beforehand, read-only for the job (k6 options)."""


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """What happened during a load run."""

    report: SandboxReport
    """How it was confined."""
    duration_s: float
    """Wall time of the whole job."""
    ready: bool
    """Whether the service became ready."""
    ready_error: str = ""
    """Why it did not, when it did not."""
    load_exit: int | None = None
    """Exit status of the load generator (None when it never ran)."""
    service_exit: int | None = None
    """Exit status of the service when it ended before we stopped it (None: still running)."""
    timed_out: bool = False
    """True when the wall-clock limit killed the job."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Contents of the `outputs`, by name."""
    service_log: str = ""
    """Tail of the service's output, scrubbed."""
    load_log: str = ""
    """Tail of the load generator's output, scrubbed."""
