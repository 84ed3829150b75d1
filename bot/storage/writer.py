"""Group commit: one writer task stores waiting deliveries together, in one transaction.

A commit per request costs a transaction each; under concurrency the requests instead queue
here while the previous batch commits, and the next batch takes them all at once. Each request
awaits its own future, resolved only after the commit, so answering 202 still means "stored".
"""

from __future__ import annotations

import asyncio

from bot.storage.models import NewDelivery, StorageError
from bot.storage.store import Storage

#: Most deliveries written in one transaction (bounds the statement size and latency).
DEFAULT_MAX_BATCH = 256

_Pending = tuple[NewDelivery, "asyncio.Future[bool]"]


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
