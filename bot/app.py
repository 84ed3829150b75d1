"""The App's factories: storage, the GitHub session and workers, with the intake beside them.

`connector-gate serve` runs two processes (three with SQLite's writer): `create_workers_app`
here, whose workers review pull requests, and the intake process it starts (bot.intake), the
only one that listens. `create_app` puts the intake's endpoints and the workers in one
process, for tests and embedding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.intake.app import add_intake, running
from bot.intake.link import IntakeConfig, IntakeProcess, WorkersStatus
from bot.jobs import Handler, JobRunner
from bot.logs import configure_logging
from bot.metrics import IntakeMetrics, Metrics, create_metrics
from bot.settings import Settings
from bot.storage import Storage, StorageError, WritesDeliveries, create_delivery_writer
from bot.webhooks import MAX_BODY_BYTES

HandlerFactory = Callable[[web.Application], Handler]
"""Builds the delivery handler once the app's resources (storage, client session) exist."""

SETTINGS_KEY = web.AppKey("settings", Settings)
METRICS_KEY = web.AppKey("metrics", Metrics)
STORAGE_KEY = web.AppKey("storage", Storage)
CLIENT_SESSION_KEY = web.AppKey("client_session", aiohttp.ClientSession)
RUNNER_KEY = web.AppKey("runner", JobRunner)

#: The database gets this long to answer a readiness check.
_READY_TIMEOUT_S = 2.0

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    handler: Handler | None = None,
    handler_factory: HandlerFactory | None = None,
) -> web.Application:
    """The whole App in one process; resources start with the app and stop with it.

    Without a handler no workers run: deliveries are stored and wait in the queue.
    """
    app = _resources(settings)
    add_intake(
        app,
        webhook_secrets=settings.webhook_secrets,
        open_writer=lambda metrics: _storage_writer(app, metrics),
        workers=InProcessWorkers(app),
    )
    app.cleanup_ctx.append(_client_session_context)
    _add_runner(app, handler, handler_factory)
    return app


def create_workers_app(
    settings: Settings,
    port: int,
    *,
    host: str,
    handler: Handler | None = None,
    handler_factory: HandlerFactory | None = None,
) -> web.Application:
    """The workers' process of `serve`; the intake process starts last and stops first."""
    app = _resources(settings)
    app.cleanup_ctx.append(_client_session_context)
    _add_runner(app, handler, handler_factory)
    app.cleanup_ctx.append(_intake_process_context(host, port))
    return app


def serve(
    settings: Settings,
    port: int,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - the App runs in a container behind a proxy
    handler: Handler | None = None,
    handler_factory: HandlerFactory | None = None,
) -> None:
    """Run the App until SIGINT/SIGTERM, then shut down gracefully (the intake first)."""
    configure_logging(known_secrets=(*settings.webhook_secrets, settings.private_key))
    app = create_workers_app(
        settings, port, host=host, handler=handler, handler_factory=handler_factory
    )
    asyncio.run(_run_until_stopped(app))


async def _run_until_stopped(app: web.Application) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    # Nothing listens in this process: the runner only gives the app its lifetime.
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()
        logger.info("started")
        await stop.wait()
        logger.info("stopping")
    finally:
        await runner.cleanup()


class InProcessWorkers:
    """The intake's view of workers living in its own process (create_app)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def delivery_stored(self) -> None:
        """Wake idle workers."""
        _wake_workers(self._app)

    async def status(self) -> WorkersStatus:
        """The database's and the workers' state."""
        return await workers_status(self._app)


async def workers_status(app: web.Application) -> WorkersStatus:
    """The database's state, the workers' and their metrics (queue depth refreshed)."""
    storage, metrics = app[STORAGE_KEY], app[METRICS_KEY]
    database = await _database_state(storage)
    runner = app.get(RUNNER_KEY)
    workers = "none" if runner is None else ("running" if runner.running else "stopped")
    if database == "ok":
        try:
            metrics.queue_depth.set(await storage.queue_depth())
        except StorageError:
            logger.warning("metrics: queue depth unavailable")
    return WorkersStatus(database=database, workers=workers, metrics=metrics.render())


def _resources(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = create_metrics()
    app.cleanup_ctx.append(_storage_context)
    return app


def _add_runner(
    app: web.Application, handler: Handler | None, handler_factory: HandlerFactory | None
) -> None:
    if handler is not None or handler_factory is not None:
        app.cleanup_ctx.append(_runner_context(handler, handler_factory))


def _storage_writer(
    app: web.Application, metrics: IntakeMetrics
) -> contextlib.AbstractAsyncContextManager[WritesDeliveries]:
    writer = create_delivery_writer(
        app[STORAGE_KEY],
        sqlite_synchronous=app[SETTINGS_KEY].sqlite_synchronous,
        on_process_start=metrics.writer_starts.inc,
    )
    return running(writer)


def _intake_process_context(
    host: str, port: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def intake_process_context(app: web.Application) -> AsyncIterator[None]:
        settings, storage = app[SETTINGS_KEY], app[STORAGE_KEY]
        config = IntakeConfig(
            host=host,
            port=port,
            webhook_secrets=settings.webhook_secrets,
            sqlite_file=storage.sqlite_file,
            database_url=settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
        )

        async def status() -> WorkersStatus:
            return await workers_status(app)

        intake = IntakeProcess(
            config,
            on_stored=lambda: _wake_workers(app),
            status_source=status,
            on_start=app[METRICS_KEY].intake_starts.inc,
        )
        await intake.start()
        yield
        await intake.stop()

    return intake_process_context


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


async def _database_state(storage: Storage) -> str:
    try:
        await asyncio.wait_for(storage.ping(), _READY_TIMEOUT_S)
    except (StorageError, TimeoutError):
        logger.warning("readiness: the database does not answer")
        return "unreachable"
    return "ok"
