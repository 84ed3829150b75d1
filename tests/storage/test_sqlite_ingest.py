"""The writer process's own parts: framing, and storing frames from a pipe into SQLite."""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.storage import InstallationChange, Storage
from bot.storage.sqlite_ingest import (
    READY_LINE,
    Checkpointer,
    DeliveryRow,
    FrameError,
    FrameReader,
    PayloadLog,
    connect_writer,
    delivery_frame,
    delivery_row,
    encode_frame,
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
        (b'[1, "d", "e", null, null, null, "t", null, "3"]\nabc', "lacks its size"),
        (b'[1, "d", "e", null, null, null, "t", null, -1]\n', "negative"),
        (b'[{}, "d", "e", null, null, null, "t", null, 0]\n', "wrong kind"),
        (b"[" + b" " * 4095, "too long"),
    ],
)
def test_what_is_not_a_frame_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        FrameReader().feed(data)


# -- serving frames from a pipe ----------------------------------------------------------------


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    """A migrated, empty SQLite file (no connection left open)."""
    return await migrated_sqlite_file(tmp_path / "gate.db")


def serve(database: Path, batches: Sequence[Sequence[DeliveryRow]], tail: bytes = b"") -> list[str]:
    """Feed serve_frames each batch once the previous one is answered; its answers.

    `tail` is written last, just before the stream closes.
    """
    frames_in, frames_out = os.pipe()
    answers_in, answers_out = os.pipe()

    def writer() -> None:
        connection = connect_writer(str(database), "NORMAL")
        try:
            serve_frames(frames_in, answers_out, connection, str(database), "NORMAL")
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
                frames.write(b"".join(encode_frame(r) for r in batch))
                frames.flush()
                answers += [answer_lines.readline().decode().rstrip("\n") for _ in batch]
            frames.write(tail)
        served.result()
        assert answer_lines.read() == b""
    return answers


async def test_new_ids_are_stored_and_repeats_answer_duplicate(database: Path) -> None:
    first = [row(1, "d-1"), row(2, "d-2"), row(3, "d-1")]
    later = [row(4, "d-2"), row(5, "d-3")]

    answers = serve(database, [first, later])

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


@pytest.mark.parametrize("argv", [[], ["gate.db"], ["gate.db", "NORMAL", "extra"]])
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
