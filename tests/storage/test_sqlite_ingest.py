"""The writer process's own parts: framing, and storing frames from a pipe into SQLite."""

from __future__ import annotations

import json
import os
import resource
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.storage import InstallationChange, Storage, sqlite_ingest
from bot.storage.sqlite_ingest import (
    READY_LINE,
    Checkpointer,
    DeliveryRow,
    FrameError,
    FrameReader,
    FrameRing,
    PayloadLog,
    connect_writer,
    delivery_frame,
    delivery_row,
    encode_frame,
    frame_header,
    main,
    read_payload,
    serve_frames,
)
from tests.support.deliveries import assert_stored_as_sent, new_delivery
from tests.support.sqlite import migrated_sqlite_file

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)

ROW = DeliveryRow(
    seq=7,
    delivery_id="d-7",
    event="installation",
    action="created",
    installation_id=9,
    repo=None,
    payload='{"account": "caf\u00e9 \u2713 \U0001f680"}'.encode(),
    received_at="2024-05-01 12:00:00.250000",
    change=(9, "acme", True, None),
)

FRAME = encode_frame(ROW)
HEADER_END = FRAME.index(b"\n") + 1


def row(seq: int, delivery_id: str, **overrides: Any) -> DeliveryRow:
    return delivery_row(seq, new_delivery(delivery_id, **overrides), RECEIVED)


# -- framing ---------------------------------------------------------------------------------


def test_round_trip_keeps_every_field() -> None:
    assert FrameReader().feed(encode_frame(ROW)) == [ROW]


def test_the_servers_frame_equals_the_rows_frame() -> None:
    change = InstallationChange(9, "acme", deleted=True)
    for delivery in (new_delivery("d-4", installation_change=change), new_delivery("d-5")):
        header, payload = delivery_frame(4, delivery, RECEIVED)
        assert header + payload == encode_frame(delivery_row(4, delivery, RECEIVED))


def test_delivery_row_takes_the_installation_change_and_utc_time() -> None:
    change = InstallationChange(9, "acme", suspended=True)
    made = delivery_row(3, new_delivery("d-3", installation_change=change), RECEIVED)
    assert made.change == (9, "acme", True, None)
    assert made.received_at == "2024-05-01 12:00:00.250000"
    assert FrameReader().feed(encode_frame(made)) == [made]


@pytest.mark.parametrize("hours", [0, 2, -5])
def test_received_times_are_stored_in_utc_whatever_their_zone(hours: int) -> None:
    zone = UTC if hours == 0 else timezone(timedelta(hours=hours))
    moment = RECEIVED.astimezone(zone)
    made = delivery_row(3, new_delivery("d-3"), moment)
    (header,) = delivery_frame(3, new_delivery("d-3"), moment, FrameRing(bytearray(1024)))
    assert made.received_at == "2024-05-01 12:00:00.250000"
    assert FrameReader(memoryview(bytearray(1024))).feed(header)[0].received_at == made.received_at


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(lambda f: [f], id="whole"),
        pytest.param(lambda f: [f[i : i + 1] for i in range(len(f))], id="byte-by-byte"),
        pytest.param(lambda f: [f[:5], f[5:]], id="split-in-header"),
        pytest.param(lambda f: [f[:HEADER_END], f[HEADER_END:]], id="split-after-header"),
        pytest.param(lambda f: [f[:-3], f[-3:]], id="split-inside-a-character"),
    ],
)
def test_a_frame_is_read_however_it_arrives(chunks: Callable[[bytes], list[bytes]]) -> None:
    reader = FrameReader()
    rows: list[DeliveryRow] = []
    for chunk in chunks(FRAME):
        rows += reader.feed(chunk)
    assert rows == [ROW]
    assert reader.pending_bytes == 0


def test_two_frames_in_one_feed() -> None:
    other = row(8, "d-8")
    assert FrameReader().feed(FRAME + encode_frame(other)) == [ROW, other]


def test_pending_bytes_counts_the_incomplete_frame() -> None:
    reader = FrameReader()
    assert reader.feed(FRAME + FRAME[:10]) == [ROW]
    assert reader.pending_bytes == 10
    assert reader.feed(FRAME[10:]) == [ROW]
    assert reader.pending_bytes == 0


def test_a_header_just_under_the_limit_waits_for_its_newline() -> None:
    reader = FrameReader()
    assert reader.feed(b"x" * 4095) == []
    assert reader.pending_bytes == 4095


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json\n", "not JSON"),
        (b'{"seq": 1, "id": "d-1", "size": 3}\nabc', "not an array of its fields"),
        (b"[1, 2]\n", "not an array of its fields"),
        (b'[1, "d", "e", null, null, null, "t", null, "3", null]\nabc', "lacks its size"),
        (b'[1, "d", "e", null, null, null, "t", null, -1, null]\n', "negative"),
        (b'[{}, "d", "e", null, null, null, "t", null, 0, null]\n', "wrong kind"),
        (b'[1, "d", "e", null, null, null, "t", null, 3, 0]\n', "the writer has none"),
        (b"[" + b" " * 4095, "too long"),
    ],
)
def test_what_is_not_a_frame_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        FrameReader().feed(data)


# -- the frame ring --------------------------------------------------------------------------

Step = tuple[str, int, int, int | None]
"""("place", seq, size, expected offset) or ("release", seq, 0, None): through seq."""


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([("place", 1, 40, 0), ("place", 2, 60, 40)], id="fills-to-the-end"),
        pytest.param([("place", 1, 101, None), ("place", 2, 0, None)], id="too-big-or-empty"),
        pytest.param(
            [("place", 1, 40, 0), ("place", 2, 40, 40), ("place", 3, 30, None)],
            id="no-room-at-the-end-nor-before-the-oldest",
        ),
        pytest.param(
            [
                ("place", 1, 40, 0),
                ("place", 2, 40, 40),
                ("release", 1, 0, None),
                ("place", 3, 30, 0),
                ("place", 4, 15, None),
                ("place", 5, 10, 30),
            ],
            id="wraps-into-the-space-given-back",
        ),
        pytest.param(
            [
                ("place", 1, 70, 0),
                ("place", 2, 20, 70),
                ("release", 2, 0, None),
                ("place", 3, 100, 0),
            ],
            id="all-given-back-starts-over",
        ),
        pytest.param(
            [
                ("place", 1, 50, 0),
                ("place", 2, 50, 50),
                ("release", 1, 0, None),
                ("place", 3, 50, 0),
                ("release", 2, 0, None),
                ("place", 4, 40, 50),
            ],
            id="after-a-wrap-the-end-frees-up",
        ),
    ],
)
def test_the_ring_takes_space_in_order_and_gives_it_back_in_order(steps: list[Step]) -> None:
    ring = FrameRing(bytearray(100))
    for action, seq, size, expected in steps:
        if action == "release":
            ring.release_through(seq)
        else:
            assert ring.place(seq, bytes([seq]) * size) == expected, (seq, size)


def test_the_ring_holds_each_payload_where_it_says() -> None:
    buffer = bytearray(64)
    ring = FrameRing(buffer)
    first, second = ring.place(1, b"first"), ring.place(2, b"second")
    assert (first, second) == (0, 5)
    assert buffer[:11] == b"firstsecond"
    assert ring.used == 11
    ring.release_through(2)
    assert ring.used == 0


def test_a_shared_ring_is_memory_the_writer_can_map() -> None:
    ring, fd = FrameRing.shared(4096)
    try:
        offset = ring.place(1, b"payload")
        view = sqlite_ingest.map_ring(fd, 4096)
        assert offset is not None
        assert bytes(view[offset : offset + 7]) == b"payload"
        view.release()
    finally:
        os.close(fd)


def test_a_frame_in_the_ring_is_its_header_alone() -> None:
    buffer = bytearray(1024)
    ring = FrameRing(buffer)
    delivery = new_delivery("d-4")

    parts = delivery_frame(4, delivery, RECEIVED, ring)

    assert len(parts) == 1
    rows = FrameReader(memoryview(buffer)).feed(parts[0])
    assert [bytes(r.payload) for r in rows] == [delivery.payload.encode()]
    assert rows[0].delivery_id == "d-4"


def test_a_payload_the_ring_has_no_room_for_follows_its_header() -> None:
    ring = FrameRing(bytearray(8))
    delivery = new_delivery("d-5")

    parts = delivery_frame(5, delivery, RECEIVED, ring)

    assert parts == (frame_header(delivery_row(5, delivery, RECEIVED)), delivery.payload.encode())
    assert ring.used == 0


def test_frames_in_the_ring_and_in_the_pipe_are_read_in_order() -> None:
    buffer = bytearray(64)
    ring = FrameRing(buffer)
    small = row(1, "d-1", payload='{"n": 1}')
    big = row(2, "d-2", payload=json.dumps({"text": "x" * 100}))  # bigger than the ring
    data = frame_header(small, ring=ring.place(1, small.payload)) + encode_frame(big)

    rows = FrameReader(memoryview(buffer)).feed(data)

    assert [(r.delivery_id, bytes(r.payload)) for r in rows] == [
        ("d-1", small.payload),
        ("d-2", big.payload),
    ]


@pytest.mark.parametrize("offset", [-1, 60, "0"])
def test_a_frame_pointing_outside_the_ring_is_refused(offset: object) -> None:
    header = json.dumps([1, "d", "e", None, None, None, "t", None, 8, offset]).encode()
    with pytest.raises(FrameError, match="outside the ring"):
        FrameReader(memoryview(bytearray(64))).feed(header + b"\n")


# -- serving frames from a pipe ----------------------------------------------------------------


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    """A migrated, empty SQLite file (no connection left open)."""
    return await migrated_sqlite_file(tmp_path / "gate.db")


def serve(
    database: Path,
    batches: Sequence[Sequence[DeliveryRow]],
    tail: bytes = b"",
    ring: bytearray | None = None,
) -> list[str]:
    """Feed serve_frames each batch once the previous one is answered; its answers.

    `tail` is written last, just before the stream closes. With a `ring`, the payloads that
    fit go there, as the server sends them.
    """
    frame_ring = FrameRing(ring) if ring is not None else None

    def encode(r: DeliveryRow) -> bytes:
        offset = frame_ring.place(r.seq, r.payload) if frame_ring else None
        return encode_frame(r) if offset is None else frame_header(r, ring=offset)

    frames_in, frames_out = os.pipe()
    answers_in, answers_out = os.pipe()

    def writer() -> None:
        connection = connect_writer(str(database), "NORMAL")
        try:
            view = memoryview(ring) if ring is not None else None
            serve_frames(frames_in, answers_out, connection, str(database), "NORMAL", view)
        finally:
            connection.close()
            os.close(frames_in)
            os.close(answers_out)

    answers: list[str] = []
    with ThreadPoolExecutor(1) as pool, os.fdopen(answers_in, "rb") as answer_lines:
        served = pool.submit(writer)
        assert answer_lines.readline() == READY_LINE  # before any frame is sent
        with os.fdopen(frames_out, "wb") as frames:
            for batch in batches:
                frames.write(b"".join(encode(r) for r in batch))
                frames.flush()
                answers += [answer_lines.readline().decode().rstrip("\n") for _ in batch]
                if frame_ring is not None:
                    frame_ring.release_through(batch[-1].seq)
            frames.write(tail)
        served.result()
        assert answer_lines.read() == b""
    return answers


@pytest.mark.parametrize(
    "ring_bytes", [None, 4096, 100], ids=["pipe-only", "ring", "ring-then-pipe"]
)
async def test_new_ids_are_stored_and_repeats_answer_duplicate(
    database: Path, ring_bytes: int | None
) -> None:
    first = [row(1, "d-1"), row(2, "d-2"), row(3, "d-1")]
    later = [row(4, "d-2"), row(5, "d-3")]
    ring = bytearray(ring_bytes) if ring_bytes else None

    answers = serve(database, [first, later], ring=ring)

    assert answers == ["1 new", "2 new", "3 duplicate", "4 duplicate", "5 new"]
    storage = Storage.from_url(f"sqlite:///{database}")
    try:
        assert await storage.count_deliveries() == 3
        stored = await storage.get_delivery("d-1")
    finally:
        await storage.close()
    assert_stored_as_sent(stored, new_delivery("d-1"))
    assert stored is not None
    assert stored.received_at == stored.next_attempt_at == RECEIVED


async def test_installation_events_update_the_installations_table(database: Path) -> None:
    created = InstallationChange(9, "acme", suspended=False, deleted=False)
    deleted = InstallationChange(9, "acme", deleted=True)
    suspended = InstallationChange(9, "acme-renamed", suspended=True)
    other = InstallationChange(10, "other", suspended=False)

    answers = serve(
        database,
        [
            [row(1, "i-1", installation_change=created)],
            [row(2, "i-2", installation_change=deleted)],
            [
                row(3, "i-3", installation_change=suspended),
                row(4, "i-4", installation_change=other),
            ],
        ],
    )

    assert answers == ["1 new", "2 new", "3 new", "4 new"]
    storage = Storage.from_url(f"sqlite:///{database}")
    try:
        known = await storage.installation(9)
        assert await storage.installation_active(9) is False
        assert await storage.installation_active(10) is True
    finally:
        await storage.close()
    # A change that leaves a state unset (None) keeps the stored one.
    assert known is not None
    assert (known.account, known.suspended, known.deleted) == ("acme-renamed", True, True)


def test_an_unmigrated_database_answers_error_without_payload_content(tmp_path: Path) -> None:
    answers = serve(tmp_path / "empty.db", [[row(1, "d-1"), row(2, "d-2")], [row(3, "d-3")]])

    assert [a.split(" ", 2)[:2] for a in answers] == [
        ["1", "error"],
        ["2", "error"],
        ["3", "error"],
    ]
    assert all("deliveries" in a for a in answers)  # the driver's reason
    assert not any("canary" in a or "opened" in a for a in answers)


def test_the_stream_ending_inside_a_frame_is_an_error(database: Path) -> None:
    with pytest.raises(FrameError, match="inside a frame"):
        serve(database, [[row(1, "d-1")]], tail=encode_frame(row(2, "d-2"))[:-5])


# -- payload files ---------------------------------------------------------------------------------


def test_payload_references_read_back_the_bytes_appended(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path))
    refs = log.append([b"first", ROW.payload]) + log.append([b"third"])
    log.close()
    assert [read_payload(str(tmp_path), ref) for ref in refs] == [b"first", ROW.payload, b"third"]


def test_a_failed_append_leaves_later_references_right(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path))
    log.append([b"first"])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(b"first"), hard))  # a full disk, in effect
    try:
        with pytest.raises(OSError):
            log.append([b"lost"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    refs = log.append([b"second", b"third"])
    log.close()
    assert [read_payload(str(tmp_path), ref) for ref in refs] == [b"second", b"third"]


# -- entry point ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [[], ["gate.db"], ["gate.db", "NORMAL", "extra"], ["gate.db", "NORMAL", "3", "many"]],
)
def test_main_refuses_a_wrong_argument_count(argv: list[str]) -> None:
    assert main(argv) == 2


def test_main_fails_on_an_unknown_synchronous_level(tmp_path: Path) -> None:
    assert main([str(tmp_path / "gate.db"), "OFF"]) == 1


def test_connect_writer_accepts_only_normal_or_full(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        connect_writer(str(tmp_path / "gate.db"), "OFF")


def test_a_checkpointer_closes_promptly_whenever_close_comes(database: Path) -> None:
    # A close() racing a requested checkpoint must never be lost (the writer would then hang
    # on exit, and its server would have to kill it).
    for round_no in range(40):
        checkpointer = Checkpointer(str(database), interval_s=0.001 * (round_no % 4))
        for _ in range(round_no % 3):
            checkpointer.request()
        closer = threading.Thread(target=checkpointer.close)
        closer.start()
        closer.join(timeout=5)
        assert not closer.is_alive(), f"close() hung in round {round_no}"
