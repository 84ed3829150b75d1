"""Group commit: waiting deliveries are stored together, in one transaction.

A commit per request costs a transaction each; under concurrency the requests instead queue
while the previous batch commits, and the next batch takes them all at once. Each request
awaits its own future, resolved only after the commit, so answering 202 still means "stored".

Two writers keep that promise: DeliveryWriter, a task of the server's event loop (PostgreSQL,
in-memory SQLite), and ProcessDeliveryWriter, which hands SQLite files to a writer process so
that storing runs beside the event loop instead of taking turns with it under one GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.storage import sqlite_ingest
from bot.storage.models import NewDelivery, StorageError

if TYPE_CHECKING:
    # Only a type here: the intake process stores through the writer process alone.
    from bot.storage.store import Storage

logger = logging.getLogger(__name__)

#: Most deliveries written in one transaction (bounds the statement size and latency).
DEFAULT_MAX_BATCH = 256

_Pending = tuple[NewDelivery, "asyncio.Future[bool]"]


def _nothing() -> None:
    pass


class WritesDeliveries(Protocol):
    """What the webhook receiver needs: store one delivery, say whether it was new."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, delivery: NewDelivery) -> bool: ...

    @property
    def state(self) -> str:
        """`running`, `stopped`, or `restarting` (a new process starts with the next delivery)."""
        ...


def create_delivery_writer(
    storage: Storage, *, sqlite_synchronous: str, on_process_start: Callable[[], None] = _nothing
) -> WritesDeliveries:
    """The writer process for a SQLite file; the in-process writer for anything else."""
    if storage.sqlite_file is not None:
        return ProcessDeliveryWriter(
            storage.sqlite_file,
            synchronous=sqlite_synchronous,
            clock=storage.now,
            on_start=on_process_start,
        )
    return DeliveryWriter(storage)


class DeliveryWriter:
    """The single task that writes deliveries to storage in batches."""

    def __init__(
        self, storage: Storage, *, max_batch: int = DEFAULT_MAX_BATCH, linger_s: float = 0.0
    ) -> None:
        self._storage = storage
        self._max_batch = max_batch
        # Batches form on their own while the previous one commits; a linger only helps when
        # commits are much cheaper than requests, so it is off by default.
        self._linger_s = linger_s
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches_written = 0
        """How many transactions the writer committed (observability and tests)."""

    async def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="delivery-writer")

    async def stop(self) -> None:
        """Write what is already queued, then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._queue.put_nowait(None)
        await task

    @property
    def state(self) -> str:
        """`running` while the writer task runs, else `stopped`."""
        return "running" if self._task is not None and not self._task.done() else "stopped"

    async def submit(self, delivery: NewDelivery) -> bool:
        """Store a delivery; True once committed as new, False if its id was already stored."""
        if self._task is None:
            raise StorageError("the delivery writer is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((delivery, future))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, stopping = await self._collect(first)
            await self._write(batch)
            if stopping:
                return

    async def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        if self._linger_s:
            await asyncio.sleep(self._linger_s)
        while len(batch) < self._max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    async def _write(self, batch: list[_Pending]) -> None:
        # The same id twice in one batch (a quick redelivery): the first is written, the
        # others answer "already stored" without reaching the database.
        first_index: dict[str, int] = {}
        for index, (delivery, _) in enumerate(batch):
            first_index.setdefault(delivery.delivery_id, index)
        unique = [batch[index][0] for index in first_index.values()]
        try:
            is_new = await self._storage.insert_deliveries(unique)
        except Exception as err:
            # Whatever went wrong, every waiting request must hear of it, and the writer must
            # live on for the next batch.
            failure = err if isinstance(err, StorageError) else StorageError(type(err).__name__)
            for _, future in batch:
                _resolve(future, error=failure)
            return
        self.batches_written += 1
        new_ids = {d.delivery_id for d, new in zip(unique, is_new, strict=True) if new}
        for index, (delivery, future) in enumerate(batch):
            first = first_index[delivery.delivery_id] == index
            _resolve(future, result=first and delivery.delivery_id in new_ids)


def _resolve(
    future: asyncio.Future[bool], *, result: bool = False, error: BaseException | None = None
) -> None:
    # The request may have gone away (client disconnected) and cancelled its future.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


#: Most buffers one writev takes (Linux's IOV_MAX is 1024).
_MAX_WRITEV_PARTS = 1024

#: Pipe capacity asked for the frames (Linux; best effort): a batch waits in the pipe.
_PIPE_BYTES = 1 << 20

#: Shared memory for the payloads on their way to the writer (Linux): 32 requests of 24 KB
#: in flight take 768 KiB. A payload that does not fit goes down the pipe.
RING_BYTES = 1 << 20

#: How long the writer process may take to open the database and say it is ready.
_START_TIMEOUT_S = 30.0

#: How long stop() lets the writer process store what it was sent before killing it.
_STOP_TIMEOUT_S = 30.0

#: The last stderr bytes of a writer process kept for the log line on its exit.
_STDERR_BYTES = 4096

_WRITER_SCRIPT = Path(sqlite_ingest.__file__).resolve()


class _WriterGone(StorageError):
    """The writer process ended before answering: the frame may be sent again."""


class _Channel(asyncio.SubprocessProtocol):
    """One writer process: frames out, answers in, the requests waiting for them.

    A protocol rather than streams: answers resolve their requests as they arrive, with no
    reader task in between.
    """

    def __init__(self, ring: sqlite_ingest.FrameRing | None = None) -> None:
        self.ring = ring
        """Where this process's payloads go, when they fit (None: all down the pipe)."""
        self.pending: dict[int, asyncio.Future[bool]] = {}
        self.outbox: list[bytes | memoryview] = []
        """Frames (header, payload, header...) of this turn of the event loop, for flush()."""
        self.ended = False
        """The process's answers ended: it is gone, and nothing more may wait on it."""
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved by the writer's ready line; failed if it exits before sending one."""
        self.transport: asyncio.SubprocessTransport | None = None
        self._partial = b""
        self._stderr = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self._stderr = (self._stderr + data)[-_STDERR_BYTES:]
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line == sqlite_ingest.READY_LINE.rstrip():
                self.ready.set_result(None)
                continue
            seq = _answer(self.pending, line)
            if self.ring is not None:
                self.ring.release_through(seq)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.ended = True  # from here on, submits start a new process

    def connection_lost(self, exc: Exception | None) -> None:
        # The process has exited and every pipe is closed: no answer can still come.
        self.ended = True
        code = self.transport.get_returncode() if self.transport else None
        failure = _WriterGone(f"the delivery writer process exited ({code})")
        for future in self.pending.values():
            _resolve(future, error=failure)
        self.pending.clear()
        detail = self._stderr.decode(errors="replace").strip()
        if code != 0 or detail:
            logger.error("delivery writer process exited with %s: %s", code, detail[-1000:])
        if not self.ready.done():
            reason = detail.splitlines()[-1] if detail else f"exit status {code}"
            self.ready.set_exception(StorageError(f"the delivery writer did not start: {reason}"))
        if not self.finished.done():
            self.finished.set_result(None)

    def flush(self) -> None:
        """Write this turn's frames in one go (scheduled by the first frame of the turn)."""
        frames, self.outbox = self.outbox, []
        stdin = self._stdin()
        if stdin is None or self.ended or stdin.is_closing():
            return  # the process is gone: connection_lost fails every waiting request
        if stdin.get_write_buffer_size() == 0 and len(frames) <= _MAX_WRITEV_PARTS:
            frames = _writev_what_fits(stdin, frames)
        # Unbounded on purpose: what waits here is bounded by the requests in flight.
        if frames:
            stdin.write(b"".join(frames))

    def close_input(self) -> None:
        """Send what is queued, then end the input: the writer stores it, answers, exits."""
        self.flush()
        stdin = self._stdin()
        if stdin is not None:
            stdin.close()

    @property
    def pid(self) -> int | None:
        return self.transport.get_pid() if self.transport else None

    def _stdin(self) -> asyncio.WriteTransport | None:
        pipe = self.transport.get_pipe_transport(0) if self.transport else None
        return pipe if isinstance(pipe, asyncio.WriteTransport) else None


class ProcessDeliveryWriter:
    """Group commit in a writer process of its own (see bot.storage.sqlite_ingest).

    Each submit writes one frame to the process and awaits its answer, which comes only after
    the commit. Should the process die, a new one is started and each request whose frame went
    unanswered sends it once more: dedup by delivery id makes that safe (a frame committed just
    before the crash answers "duplicate"). A request the second process fails too gets the
    error (the receiver answers 503, nothing was promised).
    """

    def __init__(
        self,
        database: str,
        *,
        synchronous: str = "NORMAL",
        clock: Callable[[], datetime],
        on_start: Callable[[], None] = _nothing,
    ) -> None:
        self._database = database
        self._on_start = on_start
        self._synchronous = synchronous
        self._clock = clock
        self._channel: _Channel | None = None
        self._spawning = asyncio.Lock()
        self._seq = 0
        self._running = False
        self.payloads_by_ring = 0
        """Payloads handed over in the shared frame ring (observability and tests)."""
        self.payloads_by_pipe = 0
        """Payloads sent down the pipe: no ring, or no room in it."""

    async def start(self) -> None:
        """Start the writer process."""
        self._running = True
        await self._current_channel()

    async def stop(self) -> None:
        """Let the process store what it was sent, then stop it."""
        self._running = False
        async with self._spawning:  # a process being started is stopped too, not left behind
            channel, self._channel = self._channel, None
        if channel is None:
            return
        channel.close_input()
        try:
            await asyncio.wait_for(asyncio.shield(channel.finished), _STOP_TIMEOUT_S)
        except TimeoutError:
            if channel.transport is not None:
                channel.transport.kill()
            await channel.finished

    async def submit(self, delivery: NewDelivery) -> bool:
        """Store a delivery; True once committed as new, False if its id was already stored."""
        channel = self._live_channel() or await self._current_channel()
        try:
            # Awaited here rather than in a helper coroutine: each await in between is one
            # more frame to resume on every answer, once per webhook on the intake's loop.
            return await self._send(channel, delivery)
        except _WriterGone:
            return await self._send(await self._current_channel(), delivery)

    @property
    def state(self) -> str:
        """`running`, `stopped`, or `restarting` (a new process starts with the next delivery)."""
        if not self._running:
            return "stopped"
        return "running" if self._live_channel() is not None else "restarting"

    @property
    def pid(self) -> int | None:
        """The writer process's id, while one runs (operations and tests)."""
        return self._channel.pid if self._channel else None

    def _send(self, channel: _Channel, delivery: NewDelivery) -> asyncio.Future[bool]:
        """Queue the delivery's frame for this turn's write; the future of its answer."""
        self._seq += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        channel.pending[self._seq] = future
        frame = sqlite_ingest.delivery_frame(self._seq, delivery, self._clock(), channel.ring)
        if len(frame) == 1:
            self.payloads_by_ring += 1
        else:
            self.payloads_by_pipe += 1
        if not channel.outbox:
            # One write per turn of the event loop for every frame of that turn: a pipe write
            # wakes the writer process, and that costs more than copying the bytes.
            asyncio.get_running_loop().call_soon(channel.flush)
        channel.outbox += frame
        return future

    def _live_channel(self) -> _Channel | None:
        """The running process's channel, without a lock (the hot path); None if there is none."""
        channel = self._channel
        return channel if self._running and channel is not None and not channel.ended else None

    async def _current_channel(self) -> _Channel:
        channel = self._live_channel()
        if channel is not None:
            return channel
        async with self._spawning:
            if not self._running:
                raise StorageError("the delivery writer is not running")
            channel = self._channel
            if channel is None or channel.ended:
                channel = self._channel = await self._spawn()
            return channel

    async def _spawn(self) -> _Channel:
        ring, ring_fd = _new_ring()
        ring_args = [str(ring_fd), str(RING_BYTES)] if ring_fd is not None else []
        try:
            # -I: none of the server's environment (its secrets); -S: only the standard library.
            transport, channel = await asyncio.get_running_loop().subprocess_exec(
                lambda: _Channel(ring),
                sys.executable,
                "-I",
                "-S",
                str(_WRITER_SCRIPT),
                self._database,
                self._synchronous,
                *ring_args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={},
                pass_fds=() if ring_fd is None else (ring_fd,),
            )
        finally:
            if ring_fd is not None:
                os.close(ring_fd)  # the writer has its own; the mapping stays
        _widen_pipe(transport)
        try:
            await asyncio.wait_for(asyncio.shield(channel.ready), _START_TIMEOUT_S)
        except TimeoutError:
            transport.kill()
            raise StorageError("the delivery writer did not start in time") from None
        logger.info("delivery writer process %d started", transport.get_pid())
        self._on_start()
        return channel


def _new_ring() -> tuple[sqlite_ingest.FrameRing | None, int | None]:
    if not hasattr(os, "memfd_create"):
        return None, None  # not Linux: every payload goes down the pipe
    try:
        return sqlite_ingest.FrameRing.shared(RING_BYTES)
    except OSError as err:
        logger.warning("no shared frame ring (%s): payloads go down the pipe", err)
        return None, None


def _answer(pending: dict[int, asyncio.Future[bool]], line: bytes) -> int:
    """Resolve the request an answer line is for; the frame's number."""
    number, _, outcome = line.decode().partition(" ")
    seq = int(number)
    future = pending.pop(seq, None)
    if future is None:
        return seq
    if outcome == "new":
        _resolve(future, result=True)
    elif outcome == "duplicate":
        _resolve(future, result=False)
    else:
        reason = outcome.removeprefix("error ")
        _resolve(future, error=StorageError(f"store deliveries failed: {reason}"))
    return seq


def _writev_what_fits(
    stdin: asyncio.WriteTransport, frames: list[bytes | memoryview]
) -> list[bytes | memoryview]:
    """Write the frames straight to the pipe in one writev; what did not fit, to be queued.

    The payloads reach the kernel without first being joined into one more copy. Only while
    the transport holds nothing back, so the bytes keep their order.
    """
    pipe = stdin.get_extra_info("pipe")
    try:
        written = os.writev(pipe.fileno(), frames)
    except (BlockingIOError, InterruptedError):
        return frames
    except OSError:
        return frames  # the transport's own write meets the same error and handles it
    if written == sum(len(frame) for frame in frames):
        return []
    return [b"".join(frames)[written:]]


def _widen_pipe(transport: asyncio.SubprocessTransport) -> None:
    stdin = transport.get_pipe_transport(0)
    pipe = stdin.get_extra_info("pipe") if stdin else None
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), set_size, _PIPE_BYTES)
