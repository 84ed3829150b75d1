"""The line protocol between the intake process and the workers' process that started it.

Intake to workers (the intake's stdout), one line each:
  `ready`              listening on its port, its delivery writer running
  `failed <reason>`    could not start (the reason names the cause; it then exits 1)
  `stored`             deliveries were stored: wake the workers (one per turn of its loop)
  `status <n>`         asks for the workers' status, answered with the same number
Workers to intake (the intake's stdin):
  one JSON line first: the IntakeConfig (secrets travel here, never in argv or environment)
  `<n> <json>`         the WorkersStatus asked for by `status <n>`
  end of input         the workers' process is gone or stopping: the intake shuts down
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)

#: How long /readyz and /metrics wait for the workers' answer.
STATUS_TIMEOUT_S = 2.0

#: How long the intake may take to import, open its writer and listen.
START_TIMEOUT_S = 60.0

#: How long a stopping intake may take to answer what it holds and close its writer.
STOP_TIMEOUT_S = 30.0

#: Least time between two `stored` lines: the first delivery after a quiet spell wakes the
#: workers at once, a burst wakes them at most this often (each line wakes the workers'
#: process, which shares the cores with the intake).
STORED_INTERVAL_S = 0.01

#: A status answer longer than this is not one (metrics text is a few kilobytes).
_MAX_LINE_BYTES = 1 << 20


class IntakeError(Exception):
    """The intake process could not start (the message names the cause)."""


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """What the intake process needs, validated by the workers' process beforehand."""

    host: str
    """Address to listen on."""
    port: int
    """TCP port to listen on."""
    webhook_secrets: tuple[str, ...]
    """Secrets a delivery's signature may be made with (several during a rotation)."""
    sqlite_file: str | None
    """Absolute path of the SQLite database, or None for PostgreSQL."""
    database_url: str
    """The database URL (used when sqlite_file is None)."""
    sqlite_synchronous: str
    """NORMAL or FULL."""

    def to_line(self) -> bytes:
        """The config as the first line of the intake's input."""
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> IntakeConfig:
        """Parse the first line of input; ValueError if it is not a config."""
        fields = json.loads(line)
        if not isinstance(fields, dict):
            raise ValueError("the intake config is not a JSON object")
        try:
            return cls(
                host=str(fields["host"]),
                port=int(fields["port"]),
                webhook_secrets=tuple(str(s) for s in fields["webhook_secrets"]),
                sqlite_file=None if fields["sqlite_file"] is None else str(fields["sqlite_file"]),
                database_url=str(fields["database_url"]),
                sqlite_synchronous=str(fields["sqlite_synchronous"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"the intake config lacks a field ({err})") from None


@dataclass(frozen=True, slots=True)
class WorkersStatus:
    """What the intake shows of the workers' side at /readyz and /metrics."""

    database: str
    """`ok` or `unreachable`."""
    workers: str
    """`running`, `stopped`, `none` (no handler configured) or `unreachable` (no answer)."""
    metrics: str = ""
    """Exposition text of the workers' instruments."""

    @property
    def ready(self) -> bool:
        """True when the database answers and no worker has stopped."""
        return self.database == "ok" and self.workers in ("running", "none")


UNREACHABLE = WorkersStatus(database="unknown", workers="unreachable")


def encode_status(number: int, status: WorkersStatus) -> bytes:
    """The answer line to `status <number>`."""
    return f"{number} {json.dumps(asdict(status))}\n".encode()


def decode_status(line: bytes) -> tuple[int, WorkersStatus]:
    """Parse an answer line; ValueError if it is not one."""
    number, _, text = line.partition(b" ")
    fields = json.loads(text)
    if not isinstance(fields, dict):
        raise ValueError("a status answer is a JSON object")
    status = WorkersStatus(
        database=str(fields.get("database", "unknown")),
        workers=str(fields.get("workers", "unreachable")),
        metrics=str(fields.get("metrics", "")),
    )
    return int(number), status


def read_config(fd: int) -> IntakeConfig:
    """Read the first line of `fd` byte by byte (nothing after it is consumed)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise ValueError("input ended before the intake config")
        line += byte
        if len(line) > _MAX_LINE_BYTES:
            raise ValueError("the intake config line is too long")
    return IntakeConfig.from_line(bytes(line))


# -- the intake's side ----------------------------------------------------------------------


class WorkersLink(asyncio.Protocol):
    """The intake's end: tells the workers of stored deliveries, asks their status.

    Reads the answers from stdin; its end means the workers' process is gone, and
    `closed` is then set so the intake shuts down.
    """

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._numbers = 0
        self._waiting: dict[int, asyncio.Future[WorkersStatus]] = {}
        self._partial = b""
        self._stored_pending = False
        self._next_stored_at = 0.0
        self.closed = asyncio.Event()
        """Set once the input ends: time to stop."""

    def delivery_stored(self) -> None:
        """Wake the workers: at once after a quiet spell, else after STORED_INTERVAL_S."""
        if not self._stored_pending:
            self._stored_pending = True
            loop = asyncio.get_running_loop()
            loop.call_later(max(0.0, self._next_stored_at - loop.time()), self._send_stored)

    async def status(self) -> WorkersStatus:
        """The workers' status, or UNREACHABLE if they do not answer in time."""
        if self.closed.is_set():
            return UNREACHABLE
        self._numbers += 1
        number = self._numbers
        future: asyncio.Future[WorkersStatus] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        self._write(f"status {number}\n".encode())
        try:
            return await asyncio.wait_for(future, STATUS_TIMEOUT_S)
        except TimeoutError:
            return UNREACHABLE
        finally:
            self._waiting.pop(number, None)

    def send(self, line: str) -> None:
        """Send one line (ready, failed ...)."""
        self._write(line.replace("\n", " ").encode() + b"\n")

    def data_received(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > _MAX_LINE_BYTES:
            self._partial = b""
        for line in lines:
            self._answer(line)

    def eof_received(self) -> bool:
        self.closed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def _answer(self, line: bytes) -> None:
        try:
            number, status = decode_status(line)
        except ValueError:
            logger.warning("the workers' process sent a line that is not a status answer")
            return
        future = self._waiting.get(number)
        if future is not None and not future.done():
            future.set_result(status)

    def _send_stored(self) -> None:
        self._stored_pending = False
        self._next_stored_at = asyncio.get_running_loop().time() + STORED_INTERVAL_S
        self._write(b"stored\n")


async def connect_workers_link() -> WorkersLink:
    """The link over this process's stdin (answers) and stdout (requests)."""
    loop = asyncio.get_running_loop()
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", 0))
    link = WorkersLink(writer.write)
    await loop.connect_read_pipe(lambda: link, os.fdopen(0, "rb", 0))
    return link


# -- the workers' side ----------------------------------------------------------------------

StatusSource = Callable[[], Awaitable[WorkersStatus]]
"""Computes the workers' status for one `status` request."""


class _IntakeChannel(asyncio.SubprocessProtocol):
    """One intake process, from the workers' side."""

    def __init__(self, on_stored: Callable[[], None], status_source: StatusSource) -> None:
        self._on_stored = on_stored
        self._status_source = status_source
        self._partial = b""
        self._answers: set[asyncio.Task[None]] = set()
        self.transport: asyncio.SubprocessTransport | None = None
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved by `ready`; failed by `failed <reason>` or an exit before it."""
        self.exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._line(line.decode(errors="replace"))

    def process_exited(self) -> None:
        code = self.transport.get_returncode() if self.transport else None
        if not self.started.done():
            self.started.set_exception(IntakeError(f"the intake exited ({code}) before listening"))
        if not self.exited.done():
            self.exited.set_result(code)

    def send(self, data: bytes) -> None:
        pipe = self.transport.get_pipe_transport(0) if self.transport else None
        if isinstance(pipe, asyncio.WriteTransport) and not pipe.is_closing():
            pipe.write(data)

    def close_input(self) -> None:
        pipe = self.transport.get_pipe_transport(0) if self.transport else None
        if pipe is not None:
            pipe.close()

    def _line(self, line: str) -> None:
        if line == "stored":
            self._on_stored()
        elif line.startswith("status "):
            task = asyncio.create_task(self._answer(line.removeprefix("status ")))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        elif line == "ready" and not self.started.done():
            self.started.set_result(None)
        elif line.startswith("failed ") and not self.started.done():
            self.started.set_exception(IntakeError(line.removeprefix("failed ")))

    async def _answer(self, number: str) -> None:
        if number.isdigit():
            self.send(encode_status(int(number), await self._status_source()))


class IntakeProcess:
    """Runs the intake (`python -m bot.intake`) beside the workers, and restarts it if it dies.

    The intake is the only process GitHub talks to: it holds the webhook secrets but not the
    App's private key, and a review's CPU time never delays its answers.
    """

    def __init__(
        self,
        config: IntakeConfig,
        *,
        on_stored: Callable[[], None],
        status_source: StatusSource,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self._config = config
        self._on_stored = on_stored
        self._status_source = status_source
        self._on_start = on_start
        self._channel: _IntakeChannel | None = None
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the intake and wait until it listens; IntakeError with its reason if not."""
        self._channel = await self._spawn()
        self._watcher = asyncio.create_task(self._watch(), name="intake-watcher")

    async def stop(self) -> None:
        """Ask the intake to stop (end of its input) and wait for it; kill it if it hangs."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        channel, self._channel = self._channel, None
        if channel is not None:
            await _stop_channel(channel)

    @property
    def pid(self) -> int | None:
        """The intake's process id while it runs."""
        transport = self._channel.transport if self._channel else None
        return transport.get_pid() if transport else None

    async def _spawn(self) -> _IntakeChannel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.subprocess_exec(
            lambda: _IntakeChannel(self._on_stored, self._status_source),
            sys.executable,
            "-m",
            "bot.intake",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # its JSON log lines join ours
            env=_intake_environment(os.environ),
            # Its own session: a terminal's Ctrl-C reaches this process only, which stops both
            # in order; the end of its input stops it should this process die.
            start_new_session=True,
        )
        channel.send(self._config.to_line())
        try:
            await asyncio.wait_for(asyncio.shield(channel.started), START_TIMEOUT_S)
        except TimeoutError:
            await _stop_channel(channel)
            raise IntakeError(f"the intake did not listen within {START_TIMEOUT_S:.0f} s") from None
        except BaseException:
            await _stop_channel(channel)
            raise
        self._on_start()
        pid = channel.transport.get_pid() if channel.transport else None
        logger.info("intake process %s listening on port %d", pid, self._config.port)
        return channel

    async def _watch(self) -> None:
        # An intake that dies is replaced: deliveries it had answered are stored already, and
        # GitHub's next delivery needs a listener.
        while not self._stopping:
            assert self._channel is not None
            # Shielded: cancelling this watcher must not cancel the channel's own future.
            code = await asyncio.shield(self._channel.exited)
            if self._stopping:
                return
            logger.error("intake process exited (%s); starting another", code)
            await asyncio.sleep(1.0)
            try:
                self._channel = await self._spawn()
            except IntakeError as err:
                logger.error("the intake did not start again: %s", err)


async def _stop_channel(channel: _IntakeChannel) -> None:
    channel.close_input()
    try:
        await asyncio.wait_for(asyncio.shield(channel.exited), STOP_TIMEOUT_S)
    except TimeoutError:
        if channel.transport is not None:
            with contextlib.suppress(ProcessLookupError):
                channel.transport.send_signal(signal.SIGKILL)
        await channel.exited


def _intake_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    # None of the App's settings: the private key and the secrets stay out of its environment
    # (the secrets reach it on its input).
    return {k: v for k, v in environ.items() if not k.startswith(("GITHUB_", "CONNECTOR_GATE_"))}
