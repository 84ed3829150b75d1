"""Runs inside the sandbox's namespaces: prepares them, drops privileges, runs the job.

This file is executed as a script (`python -I -S launcher.py`), never imported by the bot at
run time, so it uses the standard library only. It reads a JSON job from stdin:

* `mode: "exec"` runs one command and exits with its status (128 + signal when killed);
* `mode: "serve"` starts a service, waits until its ready URL answers 2xx, runs the load
  command, stops the service and prints one JSON status line on stdout.

Every child is started with its resource limits and, when `uid` is set, as that unprivileged
uid; with `drop_caps` (user-namespace mode) it keeps uid 0 but loses every capability.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
from typing import Any

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# noroot, noroot_locked, no_setuid_fixup, no_setuid_fixup_locked, keep_caps_locked
_SECUREBITS_LOCKED_NOROOT = 0x01 | 0x02 | 0x04 | 0x08 | 0x20
_MS_BIND = 4096
_MS_RDONLY = 1
_MS_REMOUNT = 32
_LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
    "file_size_bytes": resource.RLIMIT_FSIZE,
}


def _prctl(option: int, arg: int) -> None:
    if _LIBC.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def _loopback_up() -> None:
    """Bring `lo` up in the fresh network namespace, so loopback works and nothing else."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1))  # SIOCSIFFLAGS


def _hide(path: str) -> None:
    """Cover a file with /dev/null (a directory with an empty tmpfs) in our mount namespace."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        source, fstype, flags = b"tmpfs", b"tmpfs", _MS_RDONLY
    else:
        source, fstype, flags = b"/dev/null", None, _MS_BIND
    if _LIBC.mount(source, os.fsencode(path), fstype, flags, None) != 0:
        raise OSError(ctypes.get_errno(), f"cannot hide {path}")
    if flags == _MS_BIND:
        _LIBC.mount(None, os.fsencode(path), None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)


def _drop_capabilities() -> None:
    # uid 0 of a user namespace: lock "root has no special powers" before exec, so the job
    # cannot undo the mounts that hide files or reconfigure the network namespace.
    _prctl(_PR_SET_SECUREBITS, _SECUREBITS_LOCKED_NOROOT)
    for cap in range(64):
        if _LIBC.prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            break
    _LIBC.prctl(_PR_CAP_AMBIENT, ctypes.c_ulong(_PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    if _LIBC.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _drop_privileges(proc: dict[str, Any], drop_caps: bool) -> None:
    uid, gid = proc.get("uid"), proc.get("gid")
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    elif drop_caps:
        _drop_capabilities()
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def _apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        # A CPU hard limit above the soft one: SIGXCPU first (reported), SIGKILL if ignored.
        hard = value + 5 if name == "cpu_s" else value
        resource.setrlimit(_LIMITS[name], (value, hard))


def _child(proc: dict[str, Any], drop_caps: bool, out_fd: int, err_fd: int) -> None:
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.chdir(proc["cwd"])
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _apply_limits(proc["limits"])
        _drop_privileges(proc, drop_caps)
        os.execvpe(proc["argv"][0], proc["argv"], proc["env"])  # noqa: S606 (never a shell)
    except BaseException as exc:
        os.write(2, f"sandbox: cannot start {proc['argv'][0]!r}: {exc}\n".encode())
    os._exit(127)


def _spawn(proc: dict[str, Any], drop_caps: bool, out_fd: int = 1, err_fd: int = 2) -> int:
    pid = os.fork()
    if pid == 0:
        _child(proc, drop_caps, out_fd, err_fd)
    return pid


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _wait_for(pid: int) -> int:
    # As pid 1 of a pid namespace we inherit every orphan: reap them while waiting.
    while True:
        done, status = os.waitpid(-1, 0)
        if done == pid:
            return _status_code(status)


def _run_exec(spec: dict[str, Any]) -> int:
    return _wait_for(_spawn(spec["job"], spec["drop_caps"]))


def _reap_nowait(watched: dict[int, int | None]) -> None:
    """Reap finished children; record the exit code of the ones we watch."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in watched:
            watched[pid] = _status_code(status)


def _answers_2xx(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1.0) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_ready(spec: dict[str, Any], service: int, watched: dict[int, int | None]) -> str:
    """Empty string once ready; otherwise why the service never became ready."""
    deadline = time.monotonic() + float(spec["ready_timeout_s"])
    while time.monotonic() < deadline:
        _reap_nowait(watched)
        if watched[service] is not None:
            return f"the service exited with status {watched[service]} before it was ready"
        if _answers_2xx(spec["ready_url"]):
            return ""
        time.sleep(0.1)
    return f"{spec['ready_url']} did not answer 2xx within {spec['ready_timeout_s']:g} s"


def _run_load(spec: dict[str, Any], service: int, watched: dict[int, int | None]) -> int:
    with open(spec["load_log"], "wb") as log:
        load = _spawn(spec["load"], spec["drop_caps"], log.fileno(), log.fileno())
    watched[load] = None
    while watched[load] is None:
        _reap_nowait(watched)
        time.sleep(0.05)
    return int(watched[load] or 0)


def _stop(pid: int, watched: dict[int, int | None]) -> None:
    _reap_nowait(watched)
    if watched.get(pid) is None:
        # What the service forked dies with the launcher's process group or pid namespace.
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _serve(spec: dict[str, Any]) -> dict[str, Any]:
    with open(spec["service_log"], "wb") as log:
        service = _spawn(spec["service"], spec["drop_caps"], log.fileno(), log.fileno())
    watched: dict[int, int | None] = {service: None}
    status: dict[str, Any] = {"ready": False, "ready_error": "", "load_exit": None}
    status["ready_error"] = _wait_ready(spec, service, watched)
    if not status["ready_error"]:
        status["ready"] = True
        status["load_exit"] = _run_load(spec, service, watched)
        _reap_nowait(watched)
        status["service_exit"] = watched[service]
    _stop(service, watched)
    return status


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    if spec["loopback"]:
        _loopback_up()
    for path in spec["hide"]:
        _hide(path)
    if spec["mode"] == "exec":
        sys.stdout.flush()
        os._exit(_run_exec(spec))
    print(json.dumps(_serve(spec)), flush=True)


if __name__ == "__main__":
    main()
