"""The aiohttp app factory: wires storage, the delivery writer, workers and the endpoints."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.jobs import Handler, JobRunner
from bot.logs import configure_logging
from bot.metrics import Metrics, create_metrics
from bot.settings import Settings
from bot.storage import Storage, StorageError, WritesDeliveries, create_delivery_writer
from bot.webhooks import MAX_BODY_BYTES, WebhookReceiver

HandlerFactory = Callable[[web.Application], Handler]
"""Builds the delivery handler once the app's resources (storage, client session) exist."""

SETTINGS_KEY = web.AppKey("settings", Settings)
METRICS_KEY = web.AppKey("metrics", Metrics)
STORAGE_KEY = web.AppKey("storage", Storage)
WRITER_KEY = web.AppKey("writer", WritesDeliveries)
RECEIVER_KEY = web.AppKey("receiver", WebhookReceiver)
CLIENT_SESSION_KEY = web.AppKey("client_session", aiohttp.ClientSession)
RUNNER_KEY = web.AppKey("runner", JobRunner)

#: /readyz gives the database this long to answer.
_READY_TIMEOUT_S = 2.0

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    handler: Handler | None = None,
    handler_factory: HandlerFactory | None = None,
) -> web.Application:
    """The App; resources start with the app and stop with it (nothing happens before).

    Without a handler no workers run: deliveries are stored and wait in the queue.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = create_metrics()
    app.cleanup_ctx.append(_storage_context)
    app.cleanup_ctx.append(_writer_context)
    app.cleanup_ctx.append(_client_session_context)
    if handler is not None or handler_factory is not None:
        app.cleanup_ctx.append(_runner_context(handler, handler_factory))
    app.router.add_post("/webhook", _webhook)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


def serve(
    settings: Settings,
    port: int,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - the App runs in a container behind a proxy
    handler: Handler | None = None,
    handler_factory: HandlerFactory | None = None,
) -> None:
    """Run the App until SIGINT/SIGTERM, then shut down gracefully."""
    configure_logging(known_secrets=(*settings.webhook_secrets, settings.private_key))
    app = create_app(settings, handler=handler, handler_factory=handler_factory)
    app.on_startup.append(_freeze_startup_objects)
    logger.info("starting on %s:%d", host, port)
    # aiohttp's own access log would add a line per request on the hot path; deliveries are
    # logged by the receiver and the workers instead.
    web.run_app(app, host=host, port=port, print=None, access_log=None)


async def _freeze_startup_objects(_app: web.Application) -> None:
    # Everything loaded so far (modules, SQLAlchemy metadata...) lives as long as the process;
    # keeping it out of the collector makes each collection on the hot path cheaper.
    gc.collect()
    gc.freeze()


async def _storage_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    storage = Storage.from_url(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        max_attempts=settings.job_max_attempts,
        pool_size=settings.workers + 4,
    )
    await storage.migrate()
    app[STORAGE_KEY] = storage
    yield
    await storage.close()


async def _writer_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    writer = create_delivery_writer(
        app[STORAGE_KEY],
        sqlite_synchronous=settings.sqlite_synchronous,
        on_process_start=app[METRICS_KEY].writer_starts.inc,
    )
    await writer.start()
    app[WRITER_KEY] = writer
    app[RECEIVER_KEY] = WebhookReceiver(
        settings.webhook_secrets,
        writer,
        app[METRICS_KEY],
        on_stored=lambda: _wake_workers(app),
    )
    yield
    await writer.stop()


async def _client_session_context(app: web.Application) -> AsyncIterator[None]:
    # One session per process, for every outgoing call (GitHub, OSV).
    async with aiohttp.ClientSession() as session:
        app[CLIENT_SESSION_KEY] = session
        yield


def _runner_context(
    handler: Handler | None, handler_factory: HandlerFactory | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def runner_context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS_KEY]
        chosen = handler_factory(app) if handler_factory else handler
        assert chosen is not None  # create_app only installs this context with one of them
        runner = JobRunner(
            app[STORAGE_KEY],
            chosen,
            workers=settings.workers,
            lease_s=settings.job_lease_seconds,
            grace_s=settings.shutdown_grace_seconds,
            metrics=app[METRICS_KEY],
        )
        await runner.start()
        app[RUNNER_KEY] = runner
        yield
        await runner.stop()

    return runner_context


def _wake_workers(app: web.Application) -> None:
    runner = app.get(RUNNER_KEY)
    if runner is not None:
        runner.notify()


async def _webhook(request: web.Request) -> web.Response:
    return await request.app[RECEIVER_KEY](request)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    database = await _database_state(app[STORAGE_KEY])
    runner = app.get(RUNNER_KEY)
    workers = "none" if runner is None else ("running" if runner.running else "stopped")
    writer = app[WRITER_KEY].state
    ready = database == "ok" and workers != "stopped" and writer != "stopped"
    body = {
        "status": "ready" if ready else "not ready",
        "database": database,
        "workers": workers,
        "writer": writer,
    }
    return web.json_response(body, status=200 if ready else 503)


async def _database_state(storage: Storage) -> str:
    try:
        await asyncio.wait_for(storage.ping(), _READY_TIMEOUT_S)
    except (StorageError, TimeoutError):
        logger.warning("readiness: the database does not answer")
        return "unreachable"
    return "ok"


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    try:
        metrics.queue_depth.set(await request.app[STORAGE_KEY].queue_depth())
    except StorageError:
        logger.warning("metrics: queue depth unavailable")
    body, content_type = metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})
