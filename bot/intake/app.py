"""The intake's endpoints: POST /webhook, GET /healthz, /readyz and /metrics.

`add_intake` mounts them on an app with the delivery writer's lifetime. The intake process
(`python -m bot.intake`, what `connector-gate serve` runs) builds its app with
`create_intake_app`; `bot.app.create_app` mounts the same endpoints beside in-process workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from aiohttp import web

from bot.intake.link import IntakeConfig, WorkersStatus
from bot.metrics import CONTENT_TYPE, IntakeMetrics, create_intake_metrics
from bot.storage.models import utcnow
from bot.storage.writer import DeliveryWriter, ProcessDeliveryWriter, WritesDeliveries
from bot.webhooks.intake import MAX_BODY_BYTES
from bot.webhooks.receiver import WebhookReceiver


class Workers(Protocol):
    """What the intake needs of the workers: a wake-up call, and their status."""

    def delivery_stored(self) -> None:
        """A delivery was stored: a worker may claim it now."""
        ...

    async def status(self) -> WorkersStatus:
        """The database's and the workers' state, with their metrics text."""
        ...


OpenWriter = Callable[[IntakeMetrics], AbstractAsyncContextManager[WritesDeliveries]]
"""Starts the delivery writer for the app's lifetime (it counts writer starts in the metrics)."""

INTAKE_METRICS_KEY = web.AppKey("intake_metrics", IntakeMetrics)
WRITER_KEY = web.AppKey("writer", WritesDeliveries)
WORKERS_KEY = web.AppKey("workers", Workers)
RECEIVER_KEY = web.AppKey("receiver", WebhookReceiver)


def add_intake(
    app: web.Application,
    *,
    webhook_secrets: tuple[str, ...],
    open_writer: OpenWriter,
    workers: Workers,
) -> None:
    """Mount the intake's endpoints; the writer starts and stops with the app."""
    metrics = app[INTAKE_METRICS_KEY] = create_intake_metrics()
    app[WORKERS_KEY] = workers

    async def writer_context(app: web.Application) -> AsyncIterator[None]:
        async with open_writer(metrics) as writer:
            app[WRITER_KEY] = writer
            app[RECEIVER_KEY] = WebhookReceiver(
                webhook_secrets, writer, metrics, on_stored=workers.delivery_stored
            )
            yield

    app.cleanup_ctx.append(writer_context)
    app.router.add_post("/webhook", _webhook)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)


def create_intake_app(config: IntakeConfig, workers: Workers) -> web.Application:
    """The intake process's app: the endpoints, and a writer for the configured database."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)

    def open_writer(metrics: IntakeMetrics) -> AbstractAsyncContextManager[WritesDeliveries]:
        return open_configured_writer(config, metrics)

    add_intake(
        app, webhook_secrets=config.webhook_secrets, open_writer=open_writer, workers=workers
    )
    return app


@contextlib.asynccontextmanager
async def open_configured_writer(
    config: IntakeConfig, metrics: IntakeMetrics
) -> AsyncIterator[WritesDeliveries]:
    """SQLite: the writer process; PostgreSQL: group commit on this loop, over SQLAlchemy."""
    if config.sqlite_file is not None:
        writer = ProcessDeliveryWriter(
            config.sqlite_file,
            synchronous=config.sqlite_synchronous,
            clock=utcnow,
            on_start=metrics.writer_starts.inc,
        )
        async with running(writer):
            yield writer
        return
    from bot.storage.store import Storage  # only PostgreSQL needs it (≈ 17 MB)

    storage = Storage.from_url(config.database_url, pool_size=2)
    try:
        async with running(DeliveryWriter(storage)) as in_loop:
            yield in_loop
    finally:
        await storage.close()


@contextlib.asynccontextmanager
async def running(writer: WritesDeliveries) -> AsyncIterator[WritesDeliveries]:
    """The writer, started; stopped (what it holds stored first) on the way out."""
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop()


async def _webhook(request: web.Request) -> web.Response:
    return await request.app[RECEIVER_KEY](request)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    status = await app[WORKERS_KEY].status()
    writer = app[WRITER_KEY].state
    ready = status.ready and writer != "stopped"
    body = {
        "status": "ready" if ready else "not ready",
        "database": status.database,
        "workers": status.workers,
        "writer": writer,
    }
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    app = request.app
    workers = await app[WORKERS_KEY].status()
    text = app[INTAKE_METRICS_KEY].render() + workers.metrics
    return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})
