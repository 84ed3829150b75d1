"""Deliveries as a job queue: dedup, claim, lease expiry, retries, group commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.storage import (
    DeliveryStatus,
    DeliveryWriter,
    InstallationChange,
    Storage,
    StorageError,
)
from tests.support.deliveries import DEFAULT_PAYLOAD
from tests.support.deliveries import new_delivery as delivery


async def test_insert_stores_and_deduplicates_by_delivery_id(storage: Storage) -> None:
    assert await storage.insert_deliveries([delivery("d-1"), delivery("d-2")]) == [True, True]
    assert await storage.insert_deliveries([delivery("d-1"), delivery("d-3")]) == [False, True]

    assert await storage.count_deliveries() == 3
    stored = await storage.get_delivery("d-1")
    assert stored is not None
    assert stored.status is DeliveryStatus.QUEUED
    assert stored.attempts == 0
    assert stored.payload_json() == DEFAULT_PAYLOAD
    assert (stored.event, stored.action, stored.installation_id, stored.repo) == (
        "pull_request",
        "opened",
        42,
        "acme/connectors",
    )
    assert stored.received_at.tzinfo is not None


async def test_payload_is_kept_byte_for_byte(storage: Storage) -> None:
    raw = '{"b": 1,   "a": "caf\u00e9 \\u00e9"}'
    await storage.insert_deliveries([delivery("d-raw", payload=raw)])
    stored = await storage.get_delivery("d-raw")
    assert stored is not None and stored.payload == raw


async def test_claim_leases_oldest_first_and_only_once(storage: Storage, clock: Any) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    clock.advance(1)
    await storage.insert_deliveries([delivery("d-2")])

    first = await storage.claim_next("w1", lease_s=30)
    second = await storage.claim_next("w2", lease_s=30)
    assert first is not None and second is not None
    assert (first.delivery_id, second.delivery_id) == ("d-1", "d-2")
    assert first.status is DeliveryStatus.RUNNING
    assert first.lease_owner == "w1"
    assert first.attempts == 1
    assert first.lease_until == clock.now + timedelta(seconds=30)
    assert await storage.claim_next("w3", lease_s=30) is None


async def test_concurrent_claims_never_hand_out_a_job_twice(storage: Storage) -> None:
    await storage.insert_deliveries([delivery(f"d-{i}") for i in range(20)])
    claims = await asyncio.gather(*(storage.claim_next(f"w{i}", 30) for i in range(30)))
    claimed = [c.delivery_id for c in claims if c is not None]
    assert sorted(claimed) == sorted(f"d-{i}" for i in range(20))


async def test_complete_marks_done(storage: Storage) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    job = await storage.claim_next("w1", 30)
    assert job is not None
    await storage.complete(job.id, owner="w1")
    done = await storage.get_delivery("d-1")
    assert done is not None and done.status is DeliveryStatus.DONE and done.lease_owner is None
    assert await storage.claim_next("w1", 30) is None


async def test_complete_by_a_worker_that_lost_its_lease_changes_nothing(
    storage: Storage, clock: Any
) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    job = await storage.claim_next("w1", 10)
    assert job is not None
    clock.advance(11)
    assert await storage.requeue_expired_leases() == 1
    again = await storage.claim_next("w2", 10)
    assert again is not None and again.attempts == 2

    await storage.complete(job.id, owner="w1")
    assert await storage.extend_lease(job.id, "w1", 10) is False
    current = await storage.get_delivery("d-1")
    assert current is not None and current.status is DeliveryStatus.RUNNING
    assert current.lease_owner == "w2"


async def test_expired_leases_are_requeued_live_ones_are_not(storage: Storage, clock: Any) -> None:
    await storage.insert_deliveries([delivery("d-short"), delivery("d-long")])
    short = await storage.claim_next("w1", 5)
    long = await storage.claim_next("w2", 60)
    assert short is not None and long is not None
    clock.advance(6)

    assert await storage.requeue_expired_leases() == 1
    resumed = await storage.claim_next("w3", 5)
    assert resumed is not None and resumed.delivery_id == "d-short"


async def test_extend_lease_keeps_a_long_job(storage: Storage, clock: Any) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    job = await storage.claim_next("w1", 10)
    assert job is not None
    clock.advance(8)
    assert await storage.extend_lease(job.id, "w1", 10) is True
    clock.advance(8)
    assert await storage.requeue_expired_leases() == 0


async def test_fail_retries_later_then_goes_dead(storage: Storage, clock: Any) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    statuses = []
    for _ in range(3):  # the fixture's storage allows 3 attempts
        job = await storage.claim_next("w1", 30)
        assert job is not None
        retry_at = clock.now + timedelta(seconds=10)
        statuses.append(await storage.fail(job.id, "boom token=ghp_" + "a" * 36, retry_at))
        assert await storage.claim_next("w1", 30) is None  # not due yet
        clock.advance(10)

    assert statuses == [DeliveryStatus.QUEUED, DeliveryStatus.QUEUED, DeliveryStatus.DEAD]
    dead = await storage.get_delivery("d-1")
    assert dead is not None and dead.status is DeliveryStatus.DEAD
    assert dead.last_error is not None and "ghp_" not in dead.last_error
    assert await storage.claim_next("w1", 30) is None


async def test_release_returns_the_job_without_counting_the_attempt(storage: Storage) -> None:
    await storage.insert_deliveries([delivery("d-1")])
    job = await storage.claim_next("w1", 30)
    assert job is not None
    await storage.release(job.id, owner="w1")
    again = await storage.claim_next("w2", 30)
    assert again is not None and again.attempts == 1


async def test_queue_depth_counts_waiting_and_running(storage: Storage) -> None:
    await storage.insert_deliveries([delivery(f"d-{i}") for i in range(3)])
    job = await storage.claim_next("w1", 30)
    assert job is not None
    assert await storage.queue_depth() == 3
    await storage.complete(job.id)
    assert await storage.queue_depth() == 2
    assert await storage.count_deliveries(DeliveryStatus.DONE) == 1


async def test_installation_events_recorded_with_the_delivery(storage: Storage) -> None:
    created = InstallationChange(9, "acme", suspended=False, deleted=False)
    deleted = InstallationChange(9, "acme", deleted=True)
    await storage.insert_deliveries([delivery("i-1", installation_change=created)])
    assert await storage.installation_active(9) is True

    # A replay of the deletion changes nothing the second time; the first applies it.
    await storage.insert_deliveries([delivery("i-2", installation_change=deleted)])
    await storage.insert_deliveries([delivery("i-2", installation_change=created)])
    assert await storage.installation_active(9) is False
    known = await storage.installation(9)
    assert known is not None and known.deleted and known.account == "acme"


async def test_suspension_and_unknown_installations(storage: Storage) -> None:
    assert await storage.installation_active(12345) is True
    await storage.record_installation(InstallationChange(5, "org", suspended=True))
    assert await storage.installation_active(5) is False
    await storage.record_installation(InstallationChange(5, "org", suspended=False))
    assert await storage.installation_active(5) is True


async def test_group_commit_writer_batches_concurrent_submissions(storage: Storage) -> None:
    writer = DeliveryWriter(storage)
    await writer.start()
    try:
        ids = [f"g-{i}" for i in range(200)] + ["g-0", "g-1"]
        results = await asyncio.gather(*(writer.submit(delivery(i)) for i in ids))
    finally:
        await writer.stop()

    assert results.count(True) == 200
    assert results[-2:] == [False, False]
    assert await storage.count_deliveries() == 200
    assert writer.batches_written < 200  # grouped, not one transaction per delivery


async def test_writer_reports_storage_errors_to_every_waiting_request(database_url: str) -> None:
    unmigrated = Storage.from_url(database_url)  # no tables: every insert fails
    writer = DeliveryWriter(unmigrated)
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.submit(delivery(f"e-{i}")) for i in range(5)), return_exceptions=True
        )
    finally:
        await writer.stop()
        await unmigrated.close()
    assert all(isinstance(o, StorageError) for o in outcomes)
    assert all("payload" not in str(o) and "opened" not in str(o) for o in outcomes)


async def test_submit_after_stop_is_refused(storage: Storage) -> None:
    writer = DeliveryWriter(storage)
    await writer.start()
    await writer.stop()
    with pytest.raises(StorageError):
        await writer.submit(delivery("late"))
