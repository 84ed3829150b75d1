"""The one async subprocess wrapper: argument list, no shell, group-kill on timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from checks.errors import ToolError
from checks.scrub import scrub

#: Output beyond this many bytes per stream is dropped (the tail is kept), so a chatty or
#: hostile process cannot exhaust the bot's memory.
DEFAULT_OUTPUT_CAP = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProcessOutput:
    """What a finished process left behind."""

    returncode: int
    """Exit status; negative when killed by a signal."""
    stdout: bytes
    """Captured standard output (capped; the tail is kept)."""
    stderr: bytes
    """Captured standard error (capped; the tail is kept)."""
    duration_s: float
    """Wall time from start to exit."""
    truncated: bool = False
    """True when either stream went over the cap."""

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines of stderr, scrubbed, for error messages."""
        text = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return scrub("\n".join(text[-lines:]))


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    if stream is None:
        return b"", False
    kept = bytearray()
    truncated = False
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > cap:
            del kept[: len(kept) - cap]
            truncated = True
    return bytes(kept), truncated


def _kill_group(process: asyncio.subprocess.Process) -> None:
    # start_new_session made the child a group leader: killing the group also ends whatever
    # it forked (a fork bomb, a server started by a test), not just the direct child.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_process(
    argv: Sequence[str],
    *,
    tool: str,
    timeout_s: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    preexec_fn: Callable[[], None] | None = None,
) -> ProcessOutput:
    """Run `argv` and collect its output; raise ToolError when it cannot start or times out.

    A non-zero exit is *not* an error here: tools use exit codes differently (pip-audit's 1
    means both "found" and "crashed"), so each caller decides from the output.
    """
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ToolError(tool, f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
    try:
        return await asyncio.wait_for(
            _communicate(process, stdin, output_cap, started), timeout=timeout_s
        )
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        raise ToolError(tool, f"timed out after {timeout_s:g} s and was killed") from None
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        # Whatever the child left running in its group goes too, even after a clean exit.
        _kill_group(process)


async def _communicate(
    process: asyncio.subprocess.Process, stdin: bytes | None, cap: int, started: float
) -> ProcessOutput:
    if stdin is not None and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(stdin)
            await process.stdin.drain()
        process.stdin.close()
    (out, out_cut), (err, err_cut) = await asyncio.gather(
        _read_capped(process.stdout, cap), _read_capped(process.stderr, cap)
    )
    code = await process.wait()
    return ProcessOutput(
        returncode=code,
        stdout=out,
        stderr=err,
        duration_s=time.monotonic() - started,
        truncated=out_cut or err_cut,
    )
