"""The job runner over real storage: handling, retries, dead letters, shutdown, resumption."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.jobs import JobRunner, retry_delay
from bot.metrics import create_metrics
from bot.storage import DeliveryStatus, InstallationChange, NewDelivery, Storage, StoredDelivery


def delivery(
    delivery_id: str, installation_id: int = 42, event: str = "pull_request"
) -> NewDelivery:
    return NewDelivery(
        delivery_id=delivery_id,
        event=event,
        action="opened",
        installation_id=installation_id,
        repo="acme/connectors",
        payload=json.dumps({"pull_request": {"number": 7, "head": {"sha": "abc"}}}),
    )


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(5):
        while not await check():
            await asyncio.sleep(0.02)


async def status_of(storage: Storage, delivery_id: str) -> DeliveryStatus:
    stored = await storage.get_delivery(delivery_id)
    assert stored is not None
    return stored.status


def runner(storage: Storage, handler: Any, **options: Any) -> JobRunner:
    return JobRunner(storage, handler, **{"workers": 2, "poll_s": 0.02, **options})


@pytest.mark.parametrize(
    ("attempts", "delay"), [(0, 10.0), (1, 10.0), (2, 20.0), (3, 40.0), (7, 600.0), (30, 600.0)]
)
def test_retry_delay_doubles_up_to_a_cap(attempts: int, delay: float) -> None:
    assert retry_delay(attempts) == delay


async def test_every_stored_delivery_is_handled_once(storage: Storage) -> None:
    seen: list[str] = []

    async def handle(job: StoredDelivery) -> None:
        seen.append(job.delivery_id)

    metrics = create_metrics()
    jobs = runner(storage, handle, metrics=metrics)
    await jobs.start()
    try:
        await storage.insert_deliveries([delivery(f"d-{i}") for i in range(10)])
        jobs.notify()
        await eventually(lambda: _count_done(storage, 10))
        assert jobs.running
    finally:
        await jobs.stop()
    assert sorted(seen) == sorted(f"d-{i}" for i in range(10))
    sample = metrics.registry.get_sample_value(
        "connector_gate_job_duration_seconds_count", {"outcome": "done"}
    )
    assert sample == 10


async def _count_done(storage: Storage, expected: int) -> bool:
    return await storage.count_deliveries(DeliveryStatus.DONE) == expected


async def test_a_failing_handler_is_retried_later_then_dead(storage: Storage, clock: Any) -> None:
    calls = 0

    async def handle(job: StoredDelivery) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("GitHub said no; token ghp_" + "b" * 36)

    jobs = runner(storage, handle)
    await jobs.start()
    try:
        await storage.insert_deliveries([delivery("d-1")])
        jobs.notify()
        for attempt in (1, 2):
            await eventually(lambda n=attempt: _queued_after(storage, n))  # type: ignore[misc]
            stored = await storage.get_delivery("d-1")
            assert stored is not None and stored.last_error is not None
            assert "RuntimeError: GitHub said no" in stored.last_error
            assert "ghp_" not in stored.last_error
            clock.advance(retry_delay(attempt))  # not claimed again before the backoff
            jobs.notify()
        await eventually(lambda: _is(storage, "d-1", DeliveryStatus.DEAD))
    finally:
        await jobs.stop()
    assert calls == 3  # the fixture's storage allows 3 attempts


async def _queued_after(storage: Storage, attempts: int) -> bool:
    stored = await storage.get_delivery("d-1")
    return (
        stored is not None
        and stored.status is DeliveryStatus.QUEUED
        and stored.attempts == attempts
    )


async def _is(storage: Storage, delivery_id: str, status: DeliveryStatus) -> bool:
    return await status_of(storage, delivery_id) is status


async def test_shutdown_lets_a_short_job_finish(storage: Storage) -> None:
    started = asyncio.Event()

    async def handle(job: StoredDelivery) -> None:
        started.set()
        await asyncio.sleep(0.2)

    jobs = runner(storage, handle, grace_s=5)
    await jobs.start()
    await storage.insert_deliveries([delivery("d-1")])
    jobs.notify()
    await asyncio.wait_for(started.wait(), 5)
    await jobs.stop()
    assert await status_of(storage, "d-1") is DeliveryStatus.DONE
    assert not jobs.running


async def test_shutdown_releases_a_job_that_outlives_the_grace_period(storage: Storage) -> None:
    started = asyncio.Event()

    async def handle(job: StoredDelivery) -> None:
        started.set()
        await asyncio.sleep(60)

    jobs = runner(storage, handle, grace_s=0.1)
    await jobs.start()
    await storage.insert_deliveries([delivery("d-1"), delivery("d-2")])
    jobs.notify()
    await asyncio.wait_for(started.wait(), 5)
    await jobs.stop()
    for delivery_id in ("d-1", "d-2"):
        stored = await storage.get_delivery(delivery_id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.lease_owner) == (
            DeliveryStatus.QUEUED,
            0,
            None,
        )


async def test_deliveries_of_a_deleted_installation_are_not_handled(storage: Storage) -> None:
    seen: list[str] = []

    async def handle(job: StoredDelivery) -> None:
        seen.append(job.delivery_id)

    await storage.record_installation(InstallationChange(42, "acme", deleted=True))
    await storage.insert_deliveries(
        [delivery("pr-event"), delivery("uninstall", event="installation")]
    )
    jobs = runner(storage, handle)
    await jobs.start()
    try:
        await eventually(lambda: _count_done(storage, 2))
    finally:
        await jobs.stop()
    assert seen == ["uninstall"]


async def test_start_resumes_jobs_of_a_worker_that_died(storage: Storage, clock: Any) -> None:
    seen: list[str] = []

    async def handle(job: StoredDelivery) -> None:
        seen.append(job.delivery_id)

    await storage.insert_deliveries([delivery("d-1")])
    assert await storage.claim_next("dead-process:0", lease_s=30) is not None
    clock.advance(31)
    jobs = runner(storage, handle)
    await jobs.start()
    try:
        await eventually(lambda: _count_done(storage, 1))
    finally:
        await jobs.stop()
    assert seen == ["d-1"]
