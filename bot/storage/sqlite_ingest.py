"""The SQLite delivery writer as a process of its own, and the SQL it shares with Storage.

Storing a 24 KB delivery in SQLite costs about as much CPU as answering the request; on a
thread of the server that work holds the same GIL as the event loop, so the two take turns
on one core. Run as `python sqlite_ingest.py DATABASE SYNCHRONOUS`, this file is the writer
on a core of its own: it reads framed deliveries on stdin, stores every frame that has
arrived in one transaction, and answers one line per frame on stdout once it is committed.

Payloads go to append-only payload files beside the database (PayloadLog), and the row keeps
a reference to them: a 24 KB payload in a row is written twice (WAL, then the checkpoint) and
costs about five times the CPU of one append to a file, most of it in the kernel.

The file is run by path and imports nothing but the standard library, so the writer process
stays small (no SQLAlchemy, no aiohttp): it only ever inserts deliveries, and the migrations
that created the tables are the server's job.

Frames, server to writer: a JSON header line, then exactly `size` bytes of payload (UTF-8),
unless the payload waits in the frame ring (see FrameRing) at offset `ring`, and nothing follows.
The header is an array: [seq, id, event, action, installation, repo, at, change, size, ring],
e.g. [7, "...", "pull_request", "opened", 42, "acme/connectors", "2026-01-01 00:00:00.000000",
      null, 24576, 49152]   (change: [id, account, suspended, deleted] for installation
events; ring: null for a payload that follows the header in the pipe)
Answers, writer to server: `0 ready` once the database and the payload folder are open, then
`7 new`, `7 duplicate` or `7 error <reason>`, one line per frame.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import select
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

# The writer process imports only what it runs: typing, dataclasses, logging and
# concurrent.futures would add about 4 MB to it, for annotations and one warning line.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

#: How long a SQLite connection waits for another connection's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000

#: WAL pages after which the writer checkpoints on its own, should the checkpointer fall behind.
WRITER_AUTOCHECKPOINT_PAGES = 16_000

#: The writer's first line: it has opened the database and the payload folder.
READY_LINE = b"0 ready\n"

#: Most deliveries stored in one transaction (bounds the statement and the answer latency).
MAX_BATCH = 256

#: Least time between two checkpoints of the writer process.
CHECKPOINT_INTERVAL_S = 0.2

#: Pages of SQLite's cache per connection (negative: KiB). The writer appends to the ends of
#: its B-trees, so a small cache holds what it touches; the default 2 MB per connection is
#: most of what this process would otherwise add to its interpreter.
CACHE_KIB = 512

#: Passive checkpoints in a row before the checkpointer waits for the next commit.
_CHECKPOINT_PASSES = 4

#: A header line longer than this is not a frame (ids are ≤ 64 chars, names ≤ 255).
_MAX_HEADER_BYTES = 4096

#: One read takes at most this much of the pipe (a batch of ten 24 KB frames at once).
_READ_BYTES = 256 * 1024

#: SQLAlchemy's storage format for DateTime on SQLite (so its comparisons and reads agree).
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

_COLUMNS = (
    "delivery_id, event, action, installation_id, repo, payload, payload_ref, received_at,"
    " status, attempts, next_attempt_at"
)
_INSERT_ROW = (
    f"INSERT INTO deliveries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?)"  # noqa: S608
    " ON CONFLICT (delivery_id) DO NOTHING"
)

#: A payload file is closed and the next one begun once it holds this much.
PAYLOAD_FILE_BYTES = 256 * 1024 * 1024

_PAYLOAD_FILE = re.compile(r"\A[0-9]{8}\.payloads\Z")
_INSTALLATION_UPSERT = (
    "INSERT INTO installations (id, account, suspended, deleted, updated_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET account = excluded.account,"
    " updated_at = excluded.updated_at,"
    " suspended = CASE WHEN ? IS NULL THEN installations.suspended ELSE excluded.suspended END,"
    " deleted = CASE WHEN ? IS NULL THEN installations.deleted ELSE excluded.deleted END"
)


class FrameError(ValueError):
    """The server sent something that is not a frame (a bug, never webhook content)."""


class DeliveryRow:
    """One delivery as the writer stores it (a plain class: no dataclasses in the writer)."""

    __slots__ = (
        "action",
        "change",
        "delivery_id",
        "event",
        "installation_id",
        "payload",
        "received_at",
        "repo",
        "seq",
    )

    def __init__(
        self,
        *,
        seq: int,
        delivery_id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repo: str | None,
        payload: bytes | memoryview,
        received_at: str,
        change: tuple[int, str, bool | None, bool | None] | None = None,
    ) -> None:
        self.seq = seq
        """The server's number for this frame, echoed in the answer."""
        self.delivery_id = delivery_id
        self.event = event
        self.action = action
        self.installation_id = installation_id
        self.repo = repo
        self.payload = payload
        """The JSON body exactly as received."""
        self.received_at = received_at
        """UTC, in SQLITE_TIME_FORMAT."""
        self.change = change
        """(installation id, account, suspended, deleted) for installation events."""

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeliveryRow) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"DeliveryRow(seq={self.seq}, delivery_id={self.delivery_id!r})"


if TYPE_CHECKING:

    class _InstallationChange(Protocol):
        @property
        def installation_id(self) -> int: ...
        @property
        def account(self) -> str: ...
        @property
        def suspended(self) -> bool | None: ...
        @property
        def deleted(self) -> bool | None: ...

    class _Delivery(Protocol):
        """What the writer needs of a verified delivery (bot.storage.models.NewDelivery)."""

        @property
        def delivery_id(self) -> str: ...
        @property
        def event(self) -> str: ...
        @property
        def action(self) -> str | None: ...
        @property
        def installation_id(self) -> int | None: ...
        @property
        def repo(self) -> str | None: ...
        @property
        def payload(self) -> str: ...
        @property
        def body(self) -> bytes: ...
        @property
        def installation_change(self) -> _InstallationChange | None: ...


def delivery_row(seq: int, delivery: _Delivery, received_at: datetime) -> DeliveryRow:
    """The row to store for `delivery`, received at `received_at` (an aware datetime)."""
    return DeliveryRow(
        seq=seq,
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        action=delivery.action,
        installation_id=delivery.installation_id,
        repo=delivery.repo,
        payload=_payload_bytes(delivery),
        received_at=_stored_time(received_at),
        change=_change_fields(delivery),
    )


def _payload_bytes(delivery: _Delivery) -> bytes:
    return delivery.body or delivery.payload.encode()


def _change_fields(delivery: _Delivery) -> tuple[int, str, bool | None, bool | None] | None:
    change = delivery.installation_change
    if change is None:
        return None
    return (change.installation_id, change.account, change.suspended, change.deleted)


def _stored_time(moment: datetime) -> str:
    # isoformat writes SQLITE_TIME_FORMAT ten times faster than strftime; a UTC moment (the
    # App's clock) needs no conversion, only its "+00:00" cut off.
    if moment.tzinfo is UTC:
        return moment.isoformat(" ", "microseconds")[:26]
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def encode_frame(row: DeliveryRow) -> bytes:
    """The bytes the server writes for one delivery."""
    return frame_header(row) + row.payload


def frame_header(row: DeliveryRow, *, ring: int | None = None) -> bytes:
    """The header line of a delivery's frame; its payload follows it, or is in the ring."""
    return _header_line(
        row.seq,
        row.delivery_id,
        row.event,
        row.action,
        row.installation_id,
        row.repo,
        row.received_at,
        row.change,
        len(row.payload),
        ring,
    )


def delivery_frame(
    seq: int, delivery: _Delivery, received_at: datetime, ring: FrameRing | None = None
) -> tuple[bytes | memoryview, ...]:
    """The parts the server writes for `delivery`: its header line, then its payload.

    With a `ring` that has room for the payload, the payload is copied there and the frame
    is the header line alone. The same header as `frame_header(delivery_row(...))`, built
    without the row in between: this runs once per webhook, on the intake's event loop.
    """
    payload = _payload_bytes(delivery)
    offset = ring.place(seq, payload) if ring is not None else None
    header = _header_line(
        seq,
        delivery.delivery_id,
        delivery.event,
        delivery.action,
        delivery.installation_id,
        delivery.repo,
        _stored_time(received_at),
        _change_fields(delivery),
        len(payload),
        offset,
    )
    return (header,) if offset is not None else (header, payload)


#: A header line is a JSON array in this order (an array encodes in half the time of an object).
_HEADER_FIELDS = (
    "seq",
    "id",
    "event",
    "action",
    "installation",
    "repo",
    "at",
    "change",
    "size",
    "ring",
)

_encode_header = json.JSONEncoder(separators=(",", ":")).encode


def _header_line(*fields: object) -> bytes:
    return _encode_header(fields).encode() + b"\n"


class FrameReader:
    """Cuts a byte stream into DeliveryRows; keeps a partial frame for the next feed."""

    def __init__(self, ring: memoryview | None = None) -> None:
        self._ring = ring
        """The frame ring, as the writer maps it (None: every payload comes in the pipe)."""
        self._buffer = bytearray()
        self._header: tuple[list[Any], int] | None = None
        """The parsed header of a frame whose payload is still arriving."""
        self._header_bytes = 0
        """The length of that header's line, newline included."""

    def feed(self, data: bytes | memoryview) -> list[DeliveryRow]:
        """Add bytes read from the stream; return every frame now complete."""
        buffer = self._buffer
        buffer += data
        rows: list[DeliveryRow] = []
        position = 0
        with memoryview(buffer) as view:  # slices of a view copy once, not twice
            while True:
                if self._header is None:
                    end = buffer.find(b"\n", position, position + _MAX_HEADER_BYTES)
                    if end < 0:
                        if len(buffer) - position >= _MAX_HEADER_BYTES:
                            raise FrameError("frame header too long")
                        break
                    self._header = _parse_header(bytes(view[position:end]))
                    self._header_bytes = end + 1 - position
                    position = end + 1
                header, size = self._header
                if header[-1] is not None:
                    rows.append(_row(header, self._from_ring(header[-1], size)))
                    self._header, self._header_bytes = None, 0
                    continue
                if len(buffer) - position < size:
                    break
                rows.append(_row(header, bytes(view[position : position + size])))
                position += size
                self._header, self._header_bytes = None, 0
        del buffer[:position]
        return rows

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame received so far (0 between frames)."""
        return len(self._buffer) + self._header_bytes

    def _from_ring(self, offset: object, size: int) -> memoryview:
        # A view, not a copy: the payload goes from the ring straight to its payload file,
        # and the server reuses the space only once this frame is answered.
        if self._ring is None:
            raise FrameError("frame payload in a ring, but the writer has none")
        if not isinstance(offset, int) or offset < 0 or offset + size > len(self._ring):
            raise FrameError("frame payload lies outside the ring")
        return self._ring[offset : offset + size]


class FrameRing:
    """Shared memory that carries payloads from the server to the writer process (Linux).

    Through the pipe, a payload is copied into the kernel's pipe buffers, out of them, and
    once more into a bytes object; through the ring it is copied once, by the server, and the
    writer appends it from the ring to its payload file. The pipe then carries the header
    lines only. Space is taken in order and given back in order, as the answers arrive: the
    writer has stored a frame's payload before it answers it. A payload bigger than the free
    space goes down the pipe instead.
    """

    def __init__(self, buffer: mmap.mmap | bytearray) -> None:
        self._buffer = buffer
        self._capacity = len(buffer)
        self._taken: deque[tuple[int, int, int]] = deque()
        """(seq, start, end) of each payload not answered yet, oldest first."""

    @classmethod
    def shared(cls, size: int) -> tuple[FrameRing, int]:
        """A ring in an anonymous memory file; its descriptor, for the writer process."""
        fd = os.memfd_create("connector-gate-frames", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            return cls(mmap.mmap(fd, size)), fd
        except OSError:
            os.close(fd)
            raise

    def place(self, seq: int, payload: bytes | memoryview) -> int | None:
        """Copy `payload` into free space; its offset, or None if it does not fit now."""
        start = self._free_start(len(payload))
        if start is None:
            return None
        end = start + len(payload)
        self._buffer[start:end] = payload
        self._taken.append((seq, start, end))
        return start

    def release_through(self, seq: int) -> None:
        """The frames up to `seq` are answered: their space is free again."""
        taken = self._taken
        while taken and taken[0][0] <= seq:
            taken.popleft()

    @property
    def used(self) -> int:
        """Bytes of the payloads not answered yet (tests, observability)."""
        return sum(end - start for _, start, end in self._taken)

    def _free_start(self, size: int) -> int | None:
        if not 0 < size <= self._capacity:
            return None
        if not self._taken:
            return 0
        oldest, newest = self._taken[0][1], self._taken[-1]
        if newest[1] < oldest:  # wrapped: the free space lies between the two
            return newest[2] if size <= oldest - newest[2] else None
        if size <= self._capacity - newest[2]:
            return newest[2]
        return 0 if size <= oldest else None


def map_ring(fd: int, size: int) -> memoryview:
    """The writer's view of the server's frame ring."""
    return memoryview(mmap.mmap(fd, size, prot=mmap.PROT_READ))


def insert_new_deliveries(
    cursor: Any, rows: Sequence[DeliveryRow], payloads: PayloadLog | None = None
) -> set[str]:
    """Insert the rows whose ids are not stored yet; return the ids inserted.

    The caller holds the write lock (BEGIN IMMEDIATE), so the ids found stored here stay the
    only ones: dedup is exact. The same id twice in `rows` is inserted once, from its first row.
    With `payloads`, the payloads are appended there first, then the rows that point to them
    (a repeated id's payload too: a redelivery is rare, and its bytes are never referenced).
    """
    # A prepared one-row INSERT per row: SQLite says by its change count whether the id was
    # new, so no SELECT is needed first, and the statement is prepared once per connection
    # (a multi-row INSERT is a new statement for every batch size, parsed every time).
    refs = payloads.append([row.payload for row in rows]) if payloads else [None] * len(rows)
    inserted: set[str] = set()
    for row, ref in zip(rows, refs, strict=True):
        cursor.execute(_INSERT_ROW, _values(row, ref))
        if cursor.rowcount == 1:
            inserted.add(row.delivery_id)
            if row.change is not None:
                cursor.execute(_INSTALLATION_UPSERT, _installation_values(row))
    return inserted


def connect_writer(database: str, synchronous: str) -> sqlite3.Connection:
    """A write connection in autocommit mode with the App's pragmas (transactions by hand)."""
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError("sqlite synchronous must be NORMAL or FULL")
    connection = sqlite3.connect(database, isolation_level=None)
    apply_pragmas(connection, synchronous, WRITER_AUTOCHECKPOINT_PAGES)
    connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return connection


def apply_pragmas(connection: Any, synchronous: str, autocheckpoint: int | None) -> None:
    """WAL, the synchronous level and a busy timeout, on any DB-API SQLite connection."""
    # WAL + NORMAL: a commit is durable once in the WAL file, so it survives the process
    # being killed; only an OS crash or power loss can drop the last commits. FULL also
    # fsyncs the WAL on every commit and survives power loss.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if autocheckpoint is not None:
        cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
    cursor.close()


def store_batch(
    connection: sqlite3.Connection, rows: Sequence[DeliveryRow], payloads: PayloadLog | None = None
) -> bytes:
    """Store `rows` in one transaction; the answer lines for them."""
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            inserted = insert_new_deliveries(cursor, rows, payloads)
            cursor.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
    except (sqlite3.Error, OSError) as err:
        # The driver's own words only: never a bound value (payloads are webhook content).
        reason = f"{type(err).__name__}: {err}".replace("\n", " ")
        return b"".join(f"{row.seq} error {reason}\n".encode() for row in rows)
    seen: set[str] = set()
    lines = []
    for row in rows:
        new = row.delivery_id in inserted and row.delivery_id not in seen
        seen.add(row.delivery_id)
        lines.append(f"{row.seq} {'new' if new else 'duplicate'}\n")
    return "".join(lines).encode()


def payload_directory(database: str) -> str:
    """Where the payload files of the SQLite database `database` live."""
    return f"{database}-payloads"


class PayloadLog:
    """Append-only payload files: `00000001.payloads`, then the next once one is full.

    Appends happen before the rows pointing to them commit, so a committed row always finds
    its bytes; a crash in between leaves unreferenced bytes behind, never a dangling row.
    With `sync`, the bytes reach the disk before the commit (synchronous=FULL: power loss).
    """

    def __init__(self, directory: str, *, sync: bool = False) -> None:
        self._directory = directory
        self._sync = sync
        os.makedirs(directory, mode=0o700, exist_ok=True)
        existing = sorted(name for name in os.listdir(directory) if _PAYLOAD_FILE.match(name))
        self._number = int(existing[-1].split(".")[0]) if existing else 1
        self._fd = -1
        self._size = 0
        self._open()

    def append(self, payloads: Sequence[bytes | memoryview]) -> list[str]:
        """Write `payloads` at the end of the current file; their references, in order."""
        if self._size >= PAYLOAD_FILE_BYTES:
            self._rotate()
        name = f"{self._number:08d}.payloads"
        start = self._size
        try:
            _write_all_of(self._fd, payloads)
        except OSError:
            # Part of the batch may have reached the file: later offsets start after it.
            self._size = os.fstat(self._fd).st_size
            raise
        if self._sync:
            os.fdatasync(self._fd)
        refs = []
        for payload in payloads:
            refs.append(f"{name}:{start}:{len(payload)}")
            start += len(payload)
        self._size = start
        return refs

    def close(self) -> None:
        """Close the current file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        path = os.path.join(self._directory, f"{self._number:08d}.payloads")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size
        if self._sync:
            _sync_directory(self._directory)

    def _rotate(self) -> None:
        self.close()
        self._number += 1
        self._open()


def read_payload(directory: str, ref: str) -> bytes:
    """The payload bytes a `payload_ref` points to; ValueError if it cannot be read whole."""
    name, _, span = ref.partition(":")
    offset_text, _, length_text = span.partition(":")
    if not _PAYLOAD_FILE.match(name) or not (offset_text.isdigit() and length_text.isdigit()):
        raise ValueError("malformed payload reference")
    offset, length = int(offset_text), int(length_text)
    try:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise ValueError(f"payload file {name} cannot be opened ({err.strerror})") from None
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise ValueError(f"payload file {name} ends before the payload does")
    return data


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """Passive WAL checkpoints on their own thread and connection, one pass at a time.

    Copying the WAL back into the database (with its fsyncs) then never delays a commit, and
    a checkpoint waits `interval_s` after the previous one: the commits in between share it
    (each checkpoint ends with an fsync, which costs more than the few pages of a batch).
    """

    def __init__(self, database: str, *, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._database = database
        self._interval_s = interval_s
        self._connection: sqlite3.Connection | None = None
        self._wanted = threading.Event()
        self._closing = False
        self._last = 0.0
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Ask for a checkpoint after a commit; a no-op while one is waiting to run."""
        self._wanted.set()

    def close(self) -> None:
        """Wait for the running checkpoint, then close the connection (on its own thread)."""
        self._closing = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            # Cleared before `_closing` is read: a close() from here on is seen now or wakes
            # the next wait, never lost between the two.
            self._wanted.clear()
            if self._closing:
                break
            time.sleep(max(0.0, self._last + self._interval_s - time.monotonic()))
            self._checkpoint()
            self._last = time.monotonic()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _checkpoint(self) -> None:
        try:
            connection = self._connect()
            # Frames committed during a pass stay behind; a few passes usually catch up, and
            # SQLite only starts the WAL over once every frame is back in the database.
            for _ in range(_CHECKPOINT_PASSES):
                _busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if done >= log:
                    return
        except sqlite3.Error as err:
            # Only housekeeping: the writer's own autocheckpoint still bounds the WAL.
            warn(f"WAL checkpoint failed: {type(err).__name__}: {err}")

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._database, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._connection = connection
        return self._connection


def warn(message: str) -> None:
    """A line on stderr, which the server logs should the writer exit (no logging module)."""
    print(f"delivery writer: {message}", file=sys.stderr, flush=True)


def serve_frames(
    source: int,
    sink: int,
    connection: sqlite3.Connection,
    database: str,
    synchronous: str,
    ring: memoryview | None = None,
) -> None:
    """Read frames from `source` until it closes; store and answer them batch by batch."""
    reader = FrameReader(ring)
    checkpointer = Checkpointer(database)
    payloads = PayloadLog(payload_directory(database), sync=synchronous == "FULL")
    _write_all(sink, READY_LINE)
    try:
        for rows in _batches(source, reader):
            _write_all(sink, store_batch(connection, rows, payloads))
            checkpointer.request()
    finally:
        checkpointer.close()
        payloads.close()
    if reader.pending_bytes:
        raise FrameError("the stream ended inside a frame")


def main(argv: Sequence[str]) -> int:
    """`sqlite_ingest.py DATABASE SYNCHRONOUS [RING_FD RING_BYTES]`: the writer process."""
    if len(argv) not in (2, 4) or (len(argv) == 4 and not (argv[2] + argv[3]).isdigit()):
        print("usage: sqlite_ingest.py DATABASE NORMAL|FULL [RING_FD RING_BYTES]", file=sys.stderr)
        return 2
    database, synchronous = argv[:2]
    try:
        ring = map_ring(int(argv[2]), int(argv[3])) if len(argv) == 4 else None
        connection = connect_writer(database, synchronous)
        source, sink = sys.stdin.fileno(), sys.stdout.fileno()
        serve_frames(source, sink, connection, database, synchronous, ring)
    except (sqlite3.Error, FrameError, ValueError, OSError) as err:
        print(f"delivery writer stopped: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    connection.close()
    return 0


def _batches(source: int, reader: FrameReader) -> Iterable[list[DeliveryRow]]:
    # Whatever arrived while the previous batch committed is the next batch: under load the
    # batches grow by themselves, and an idle writer answers a lone delivery at once.
    # One buffer for every read: a fresh megabyte per os.read costs page faults each time.
    chunk = bytearray(_READ_BYTES)
    view = memoryview(chunk)
    while True:
        count = os.readv(source, [chunk])
        if not count:
            return
        rows = reader.feed(view[:count])
        while len(rows) < MAX_BATCH and select.select([source], [], [], 0)[0]:
            count = os.readv(source, [chunk])
            if not count:
                break
            rows += reader.feed(view[:count])
        for start in range(0, len(rows), MAX_BATCH):
            yield rows[start : start + MAX_BATCH]


def _write_all(sink: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(sink, view) :]


def _write_all_of(sink: int, parts: Sequence[bytes | memoryview]) -> None:
    # One writev for the batch, without first joining the payloads into one more copy.
    written = os.writev(sink, parts) if parts else 0
    total = sum(len(part) for part in parts)
    if written < total:
        _write_all(sink, b"".join(parts)[written:])


def _parse_header(line: bytes) -> tuple[list[Any], int]:
    try:
        header = json.loads(line)
    except ValueError:
        raise FrameError("frame header is not JSON") from None
    if not isinstance(header, list) or len(header) != len(_HEADER_FIELDS):
        raise FrameError("frame header is not an array of its fields")
    size = header[-2]
    if not isinstance(size, int):
        raise FrameError("frame header lacks its size")
    if size < 0:
        raise FrameError("frame size is negative")
    return header, size


def _row(header: list[Any], payload: bytes | memoryview) -> DeliveryRow:
    seq, delivery_id, event, action, installation_id, repo, at, change, _size, _ring = header
    try:
        return DeliveryRow(
            seq=int(seq),
            delivery_id=str(delivery_id),
            event=str(event),
            action=action,
            installation_id=installation_id,
            repo=repo,
            payload=payload,
            received_at=str(at),
            change=tuple(change) if isinstance(change, list) else None,
        )
    except (TypeError, ValueError):
        raise FrameError("frame header has a field of the wrong kind") from None


def _values(row: DeliveryRow, ref: str | None) -> tuple[object, ...]:
    return (
        row.delivery_id,
        row.event,
        row.action,
        row.installation_id,
        row.repo,
        "" if ref else str(row.payload, "utf-8"),
        ref,
        row.received_at,
        row.received_at,
    )


def _installation_values(row: DeliveryRow) -> tuple[object, ...]:
    assert row.change is not None
    installation_id, account, suspended, deleted = row.change
    return (
        installation_id,
        account,
        bool(suspended),
        bool(deleted),
        row.received_at,
        suspended,
        deleted,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
