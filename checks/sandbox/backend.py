"""Where sandboxed jobs run: the backend interface and the local (namespaces + uid) backend."""

from __future__ import annotations

import abc
import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from checks.errors import ToolError
from checks.process import run_process
from checks.sandbox.env import SAFE_PATH, key_files_to_hide, sandbox_env
from checks.sandbox.isolation import detect_isolation, launcher_argv, next_uid_pair
from checks.sandbox.model import (
    OUT_PLACEHOLDER,
    Isolation,
    LimitHit,
    Limits,
    LoadJob,
    LoadOutcome,
    SandboxJob,
    SandboxOutcome,
    SandboxReport,
)
from checks.sandbox.workspace import Workspace, read_back, read_tail, workspace
from checks.scrub import scrub

#: Exit status the launcher reports for a child killed by a signal.
_SIGNAL_BASE = 128

#: Text a limit leaves in Python's output when the process survived to report it.
_LIMIT_SIGNS = (
    ("File too large", LimitHit.FILE_SIZE),
    ("MemoryError", LimitHit.MEMORY),
    ("Cannot allocate memory", LimitHit.MEMORY),
    ("Resource temporarily unavailable", LimitHit.PROCESSES),
    ("Too many open files", LimitHit.OPEN_FILES),
)


class SandboxBackend(abc.ABC):
    """Runs untrusted connector code somewhere confined and reports how it was confined.

    The local backend uses Linux namespaces on this host. A container or Kubernetes Job
    backend implements the same three methods: copy the connector into the job, run the
    argument list with the limits, and return the outputs (see docs/sandbox.md).
    """

    @abc.abstractmethod
    async def isolation(self) -> Isolation:
        """The isolation jobs will run under."""

    @abc.abstractmethod
    async def run(self, job: SandboxJob) -> SandboxOutcome:
        """Run one command to completion (or to its limits)."""

    @abc.abstractmethod
    async def serve_and_load(self, job: LoadJob) -> LoadOutcome:
        """Start a service, drive load at it over loopback, stop it."""


def weak_isolation_refusal(isolation: Isolation, *, is_fork: bool, allow_weak: bool) -> str:
    """Why a fork's code may not run here (empty when it may)."""
    if not is_fork or isolation.network_isolated or allow_weak:
        return ""
    return (
        f"refusing to run code from a fork with isolation `{isolation}` (no network namespace); "
        "set sandbox.allow_weak_isolation_for_forks in the rules to accept it"
    )


def limit_hit(returncode: int, output: str) -> LimitHit | None:
    """The limit a finished job ran into, judged from its exit status and output."""
    by_signal = {
        _SIGNAL_BASE + signal.SIGXCPU: LimitHit.CPU,
        _SIGNAL_BASE + signal.SIGXFSZ: LimitHit.FILE_SIZE,
    }
    if returncode in by_signal:
        return by_signal[returncode]
    for sign, hit in _LIMIT_SIGNS:
        if sign in output:
            return hit
    return None


def _substitute(argv: Sequence[str], out: Path) -> list[str]:
    return [arg.replace(OUT_PLACEHOLDER, str(out)) for arg in argv]


def _launcher_env() -> dict[str, str]:
    return {"PATH": SAFE_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}


class LocalSandbox(SandboxBackend):
    """Runs jobs on this host under the strongest isolation it offers."""

    def __init__(self, *, isolation: Isolation | None = None, hide: Sequence[str] = ()) -> None:
        self._forced = isolation
        self._extra_hidden = tuple(hide)

    async def isolation(self) -> Isolation:
        return self._forced or await detect_isolation()

    def _hidden(self, isolation: Isolation) -> tuple[str, ...]:
        # Covering files needs a mount namespace; without one only the uid protects them.
        if not isolation.network_isolated:
            return ()
        return tuple(sorted({*key_files_to_hide(), *self._extra_hidden}))

    def _spec(self, isolation: Isolation, mode: str) -> dict[str, object]:
        return {
            "mode": mode,
            "loopback": isolation.network_isolated,
            "hide": list(self._hidden(isolation)),
            "drop_caps": isolation is Isolation.NETNS_USERNS,
        }

    async def _launch(
        self, isolation: Isolation, spec: Mapping[str, object], limits: Limits
    ) -> tuple[int, bytes, bytes, bool]:
        """Run the launcher; (status, stdout, stderr, timed_out)."""
        started = time.monotonic()
        try:
            out = await run_process(
                launcher_argv(isolation),
                tool="sandbox",
                timeout_s=limits.wall_s,
                env=_launcher_env(),
                stdin=json.dumps(spec).encode(),
                output_cap=limits.output_bytes,
            )
        except ToolError:
            if time.monotonic() - started >= limits.wall_s * 0.98:
                return -1, b"", b"", True
            raise
        return out.returncode, out.stdout, out.stderr, False

    async def run(self, job: SandboxJob) -> SandboxOutcome:
        isolation = await self.isolation()
        uids = next_uid_pair() if isolation in (Isolation.NETNS_UID, Isolation.UID) else None
        report = SandboxReport(isolation, job.limits, self._hidden(isolation))
        started = time.monotonic()
        writer = uids.code if uids else None
        with workspace(job.source, uids, job.outputs, writer) as ws:
            env = sandbox_env(
                home=ws.home, path_prefix=job.path_prefix, extra=job.env, importable=ws.work
            )
            code_uid = uids.code if uids else None
            proc = _proc(ws, _substitute(job.argv, ws.out), env, job.limits, code_uid)
            spec = {**self._spec(isolation, "exec"), "job": proc}
            code, out, err, timed_out = await self._launch(isolation, spec, job.limits)
            files = {name: read_back(ws.out / name) for name in job.outputs}
        stdout, stderr = (
            scrub(out.decode("utf-8", "replace")),
            scrub(err.decode("utf-8", "replace")),
        )
        hit = LimitHit.WALL_CLOCK if timed_out else limit_hit(code, stdout + stderr)
        return SandboxOutcome(
            returncode=code,
            stdout=stdout,
            stderr=stderr,
            duration_s=time.monotonic() - started,
            report=report,
            limit_hit=hit,
            files=files,
        )

    async def serve_and_load(self, job: LoadJob) -> LoadOutcome:
        isolation = await self.isolation()
        uids = next_uid_pair() if isolation in (Isolation.NETNS_UID, Isolation.UID) else None
        report = SandboxReport(isolation, job.service_limits, self._hidden(isolation))
        started = time.monotonic()
        writer = uids.load if uids else None
        with workspace(job.source, uids, job.outputs, writer, job.inputs) as ws:
            spec = {**self._spec(isolation, "serve"), **_serve_spec(job, ws)}
            limits = job.service_limits
            code, out, err, timed_out = await self._launch(isolation, spec, limits)
            files = {name: read_back(ws.out / name) for name in job.outputs}
            logs = (
                scrub(read_tail(ws.logs / "service.log")),
                scrub(read_tail(ws.logs / "load.log")),
            )
        status = _parse_status(out) if not timed_out else {}
        if not timed_out and not status:
            tail = scrub(err.decode("utf-8", "replace"))[-2000:]
            raise ToolError("sandbox", f"the launcher failed with status {code}", stderr_tail=tail)
        return LoadOutcome(
            report=report,
            duration_s=time.monotonic() - started,
            ready=bool(status.get("ready")),
            ready_error=scrub(str(status.get("ready_error", ""))),
            load_exit=_int_or_none(status.get("load_exit")),
            service_exit=_int_or_none(status.get("service_exit")),
            timed_out=timed_out,
            files=files,
            service_log=logs[0],
            load_log=logs[1],
        )


def _proc(
    ws: Workspace, argv: Sequence[str], env: Mapping[str, str], limits: Limits, uid: int | None
) -> dict[str, object]:
    return {
        "argv": list(argv),
        "env": dict(env),
        "cwd": str(ws.work),
        "limits": limits.rlimits(),
        "uid": uid,
        "gid": uid,
    }


def _serve_spec(job: LoadJob, ws: Workspace) -> dict[str, object]:
    service_env = sandbox_env(
        home=ws.home, path_prefix=job.path_prefix, extra=job.service_env, importable=ws.work
    )
    load_env = sandbox_env(home=ws.load_home, extra=job.load_env)
    code_uid, load_uid = (ws.uids.code, ws.uids.load) if ws.uids else (None, None)
    return {
        "service": _proc(ws, job.service_argv, service_env, job.service_limits, code_uid),
        "load": _proc(ws, _substitute(job.load_argv, ws.out), load_env, job.load_limits, load_uid),
        "ready_url": job.ready_url,
        "ready_timeout_s": job.ready_timeout_s,
        "service_log": str(ws.logs / "service.log"),
        "load_log": str(ws.logs / "load.log"),
    }


def _parse_status(stdout: bytes) -> dict[str, object]:
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        status = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return status if isinstance(status, dict) else {}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None
