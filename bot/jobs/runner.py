"""In-process workers that claim stored deliveries and hand them to the orchestration handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.logs import log_context, payload_fields
from bot.metrics import Metrics
from bot.storage import DeliveryStatus, Storage, StorageError, StoredDelivery

Handler = Callable[[StoredDelivery], Awaitable[None]]
"""What the runner calls for each delivery; raising means "retry later"."""

logger = logging.getLogger(__name__)

#: Events still handed over for an installation that is deleted or suspended: they are about
#: the installation itself, so the handler may want to tidy up.
_INSTALLATION_EVENTS = frozenset({"installation", "installation_repositories"})


def retry_delay(attempts: int, *, base_s: float = 10.0, cap_s: float = 600.0) -> float:
    """Seconds to wait before the next attempt: doubling from `base_s`, at most `cap_s`."""
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))


class JobRunner:
    """N workers sharing the deliveries queue of one Storage."""

    def __init__(
        self,
        storage: Storage,
        handler: Handler,
        *,
        workers: int = 2,
        lease_s: float = 60.0,
        grace_s: float = 30.0,
        poll_s: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._storage = storage
        self._handler = handler
        self._workers = workers
        self._lease_s = lease_s
        self._grace_s = grace_s
        self._poll_s = poll_s
        self._metrics = metrics
        self._prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._last_reap = 0.0

    @property
    def running(self) -> bool:
        """True while every worker is alive and no stop was asked."""
        alive = [task for task in self._tasks if not task.done()]
        return not self._stopping and len(alive) == self._workers > 0

    async def start(self) -> None:
        """Resume jobs whose worker died, then start the workers."""
        resumed = await self._storage.requeue_expired_leases()
        if resumed:
            logger.info("requeued %d deliveries whose worker stopped mid-job", resumed)
        self._last_reap = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._work(f"{self._prefix}:{n}"), name=f"job-worker-{n}")
            for n in range(self._workers)
        ]

    def notify(self) -> None:
        """Wake idle workers: a delivery was just stored."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop claiming; let running jobs finish within the grace period, release the rest."""
        self._stopping = True
        self._wakeup.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self._grace_s)
        for task in late:
            task.cancel()
        if late:
            # Each cancelled worker releases its lease before it ends.
            await asyncio.wait(late, timeout=10)
            logger.warning("%d jobs outlived the shutdown grace period; requeued", len(late))
        self._tasks = []

    async def _work(self, worker_id: str) -> None:
        while not self._stopping:
            job = await self._claim(worker_id)
            if job is None:
                await self._idle()
                continue
            try:
                await self._run(worker_id, job)
            except StorageError:
                logger.exception("could not record a job's outcome; it reruns when its lease ends")

    async def _claim(self, worker_id: str) -> StoredDelivery | None:
        try:
            return await self._storage.claim_next(worker_id, self._lease_s)
        except StorageError:
            logger.exception("could not claim a delivery; retrying")
            return None

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self._poll_s)
        self._wakeup.clear()
        # Jobs of a worker that died elsewhere come back once their lease runs out.
        if time.monotonic() - self._last_reap > self._lease_s / 2:
            self._last_reap = time.monotonic()
            with contextlib.suppress(StorageError):
                await self._storage.requeue_expired_leases()

    async def _run(self, worker_id: str, job: StoredDelivery) -> None:
        fields = payload_fields(job.event, _payload_or_empty(job))
        with log_context(
            delivery_id=job.delivery_id,
            event=job.event,
            action=job.action,
            installation_id=job.installation_id,
            repo=job.repo,
            **fields,
        ):
            started = time.monotonic()
            outcome = await self._attempt(worker_id, job)
            if self._metrics:
                self._metrics.job_duration.labels(outcome=outcome).observe(
                    time.monotonic() - started
                )

    async def _attempt(self, worker_id: str, job: StoredDelivery) -> str:
        heartbeat = asyncio.create_task(self._heartbeat(worker_id, job.id))
        try:
            await self._call_handler(job)
        except asyncio.CancelledError:
            await self._storage.release(job.id, owner=worker_id)
            raise
        except Exception as err:
            return await self._record_failure(worker_id, job, err)
        finally:
            heartbeat.cancel()
        await self._storage.complete(job.id, owner=worker_id)
        logger.info("delivery handled (attempt %d)", job.attempts)
        return "done"

    async def _call_handler(self, job: StoredDelivery) -> None:
        if await self._installation_gone(job):
            logger.info("skipped: the installation is deleted or suspended")
            return
        await self._handler(job)

    async def _installation_gone(self, job: StoredDelivery) -> bool:
        if job.installation_id is None or job.event in _INSTALLATION_EVENTS:
            return False
        return not await self._storage.installation_active(job.installation_id)

    async def _record_failure(self, worker_id: str, job: StoredDelivery, err: Exception) -> str:
        retry_at = self._storage.now() + timedelta(seconds=retry_delay(job.attempts))
        error = f"{type(err).__name__}: {err}"
        status = await self._storage.fail(job.id, error, retry_at, owner=worker_id)
        if status is DeliveryStatus.DEAD:
            logger.error("delivery failed for good after %d attempts", job.attempts, exc_info=err)
            return "dead"
        logger.warning("delivery failed (attempt %d); will retry", job.attempts, exc_info=err)
        return "retry"

    async def _heartbeat(self, worker_id: str, job_id: int) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            with contextlib.suppress(StorageError):
                await self._storage.extend_lease(job_id, worker_id, self._lease_s)


def _payload_or_empty(job: StoredDelivery) -> dict[str, object]:
    try:
        return job.payload_json()
    except ValueError:
        return {}
