"""The delivery writer process: group commit over a pipe, crash recovery, a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.storage import (
    DeliveryWriter,
    NewDelivery,
    ProcessDeliveryWriter,
    Storage,
    StorageError,
    create_delivery_writer,
)
from bot.storage.sqlite_ingest import payload_directory
from tests.support.deliveries import assert_stored_as_sent
from tests.support.deliveries import new_delivery as delivery

#: Longer than any answer should take; a writer that hangs fails the test instead.
ANSWER_TIMEOUT_S = 20.0


@pytest.fixture
async def storage(tmp_path: Path, clock: Any) -> AsyncIterator[Storage]:
    """Migrated storage over a SQLite file, with a hand-moved clock."""
    store = Storage.from_url(f"sqlite:///{tmp_path / 'gate.db'}", clock=clock)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def writer(storage: Storage) -> AsyncIterator[ProcessDeliveryWriter]:
    assert storage.sqlite_file is not None
    process_writer = ProcessDeliveryWriter(storage.sqlite_file, clock=storage.now)
    await process_writer.start()
    yield process_writer
    await process_writer.stop()


async def answered(*submits: Any) -> list[bool | BaseException]:
    """Every outcome, failing the test should any submit still wait after the timeout."""
    gathered = asyncio.gather(*submits, return_exceptions=True)
    outcomes: list[bool | BaseException] = await asyncio.wait_for(gathered, ANSWER_TIMEOUT_S)
    return outcomes


async def crash_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Wait until the writer has logged its process's death (it has failed what waited)."""
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        while not any("process exited" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.01)


async def test_concurrent_submissions_are_stored_once_each(
    writer: ProcessDeliveryWriter, storage: Storage, clock: Any
) -> None:
    ids = [f"p-{i}" for i in range(200)] + ["p-0", "p-199"]

    results = await answered(*(writer.submit(delivery(i)) for i in ids))

    assert results[:200] == [True] * 200
    assert results[200:] == [False, False]
    assert await storage.count_deliveries() == 200
    stored = await storage.get_delivery("p-7")
    assert_stored_as_sent(stored, delivery("p-7"))
    assert stored is not None
    assert stored.received_at == clock.now


async def test_payloads_go_to_the_payload_file_and_rows_point_there(
    writer: ProcessDeliveryWriter, storage: Storage
) -> None:
    sent = [delivery(f"f-{i}", payload=json.dumps({"n": i})) for i in range(3)]
    assert await answered(*(writer.submit(d) for d in sent)) == [True] * 3

    assert storage.sqlite_file is not None
    with sqlite3.connect(storage.sqlite_file) as connection:
        rows = connection.execute("SELECT payload, payload_ref FROM deliveries").fetchall()
    assert [payload for payload, _ in rows] == ["", "", ""]
    files = list(Path(payload_directory(storage.sqlite_file)).iterdir())
    assert [f.name for f in files] == ["00000001.payloads"]
    assert files[0].read_bytes() == "".join(d.payload for d in sent).encode()
    for each in sent:
        assert_stored_as_sent(await storage.get_delivery(each.delivery_id), each)


def payload_of(delivery_id: str, letter: str) -> NewDelivery:
    """A delivery with a 24 KB payload."""
    return delivery(delivery_id, payload=json.dumps({"id": delivery_id, "text": letter * 24_000}))


async def test_payloads_cross_in_the_ring_and_what_does_not_fit_in_the_pipe(
    writer: ProcessDeliveryWriter, storage: Storage
) -> None:
    # 60 payloads of 24 KB at once (1.4 MB) and one of 1.5 MB: more than the 1 MiB ring holds.
    sent = [payload_of(f"r-{i}", "x") for i in range(60)]
    sent.append(delivery("r-big", payload=json.dumps({"text": "y" * 1_500_000})))

    assert await answered(*(writer.submit(d) for d in sent)) == [True] * len(sent)
    # Space is given back as answers arrive: 30 more fit in it again.
    again = [payload_of(f"s-{i}", "z") for i in range(30)]
    assert await answered(*(writer.submit(d) for d in again)) == [True] * len(again)

    assert writer.payloads_by_ring >= 30 + 40
    assert writer.payloads_by_pipe >= 1  # the big one at least
    assert writer.payloads_by_ring + writer.payloads_by_pipe == len(sent) + len(again)
    for each in sent + again:
        assert_stored_as_sent(await storage.get_delivery(each.delivery_id), each)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///{tmp_path}/gate.db", ProcessDeliveryWriter),
        ("sqlite:///:memory:", DeliveryWriter),
        ("postgresql://postgres@127.0.0.1:5432/unused", DeliveryWriter),
    ],
)
async def test_only_a_sqlite_file_gets_the_writer_process(
    url: str, expected: type, tmp_path: Path
) -> None:
    storage = Storage.from_url(url.format(tmp_path=tmp_path))  # no connection is made
    try:
        chosen = create_delivery_writer(storage, sqlite_synchronous="NORMAL")
    finally:
        await storage.close()
    assert type(chosen) is expected


async def test_a_killed_idle_writer_is_replaced_on_the_next_submit(
    writer: ProcessDeliveryWriter, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    assert await writer.submit(delivery("before")) is True
    killed = writer.pid
    assert killed is not None

    os.kill(killed, signal.SIGKILL)
    await crash_logged(caplog)

    assert await answered(writer.submit(delivery("after"))) == [True]
    assert writer.pid not in (None, killed)
    assert await storage.count_deliveries() == 2


async def test_a_submit_right_after_the_kill_still_succeeds(
    writer: ProcessDeliveryWriter, storage: Storage
) -> None:
    assert await writer.submit(delivery("before")) is True
    killed = writer.pid
    assert killed is not None

    os.kill(killed, signal.SIGKILL)

    assert await answered(writer.submit(delivery("after"))) == [True]
    assert writer.pid not in (None, killed)


async def test_requests_waiting_on_a_killed_writer_fail_and_never_hang(
    writer: ProcessDeliveryWriter, storage: Storage
) -> None:
    ids = [f"k-{i}" for i in range(1000)]
    submits = [asyncio.create_task(writer.submit(delivery(i))) for i in ids]
    await asyncio.wait(submits, return_when=asyncio.FIRST_COMPLETED)  # mid-stream
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)

    outcomes = await answered(*submits)

    assert all(o is True or isinstance(o, StorageError) for o in outcomes)
    # An answer of "new" is a promise: that delivery is stored.
    for delivery_id, outcome in zip(ids, outcomes, strict=True):
        if outcome is True:
            assert await storage.get_delivery(delivery_id) is not None
    assert await answered(writer.submit(delivery("later"))) == [True]


async def test_stop_stores_everything_already_submitted(
    storage: Storage, writer: ProcessDeliveryWriter
) -> None:
    submits = [asyncio.create_task(writer.submit(delivery(f"s-{i}"))) for i in range(100)]
    await asyncio.sleep(0)  # every submit has handed its frame over

    await asyncio.wait_for(writer.stop(), ANSWER_TIMEOUT_S)

    assert await answered(*submits) == [True] * 100
    assert await storage.count_deliveries() == 100
    with pytest.raises(StorageError, match="not running"):
        await writer.submit(delivery("late"))


async def test_stop_during_a_restart_leaves_no_writer_process(
    writer: ProcessDeliveryWriter, caplog: pytest.LogCaptureFixture
) -> None:
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    await crash_logged(caplog)
    submit = asyncio.create_task(writer.submit(delivery("restarting")))
    await asyncio.sleep(0)  # the submit is starting a new process

    await asyncio.wait_for(writer.stop(), ANSWER_TIMEOUT_S)
    await answered(submit)

    assert writer.pid is None


async def test_the_writer_process_gets_none_of_the_server_environment(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "canary-secret")
    assert storage.sqlite_file is not None
    process_writer = ProcessDeliveryWriter(storage.sqlite_file, clock=storage.now)
    await process_writer.start()
    try:
        assert process_writer.pid is not None
        environ = Path(f"/proc/{process_writer.pid}/environ").read_bytes()
    finally:
        await process_writer.stop()
    assert b"canary-secret" not in environ
    assert b"GITHUB_WEBHOOK_SECRET" not in environ


async def test_storage_errors_reach_every_waiting_request(tmp_path: Path, clock: Any) -> None:
    unmigrated = str(tmp_path / "empty.db")  # no tables: every insert fails
    process_writer = ProcessDeliveryWriter(unmigrated, clock=clock)
    await process_writer.start()
    try:
        outcomes = await answered(*(process_writer.submit(delivery(f"e-{i}")) for i in range(20)))
    finally:
        await process_writer.stop()
    assert all(isinstance(o, StorageError) for o in outcomes)
    assert all("deliveries" in str(o) for o in outcomes)  # the driver's reason
    assert not any("canary" in str(o) or "opened" in str(o) for o in outcomes)
