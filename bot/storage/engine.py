"""Turns a configured database URL into an async SQLAlchemy engine with the right pragmas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.models import StorageError

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: How long a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def async_url(database_url: str) -> sa.URL:
    """Map `sqlite:///...` and `postgresql://...` to their async drivers."""
    url = sa.make_url(database_url)
    if url.drivername in ("sqlite", "sqlite+aiosqlite"):
        return url.set(drivername="sqlite+aiosqlite")
    if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    raise StorageError(f"unsupported database URL scheme {url.drivername!r}")


def create_engine(
    database_url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 5
) -> AsyncEngine:
    """An engine for the URL; for SQLite, WAL mode with the chosen synchronous level."""
    url = async_url(database_url)
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        # Only the App's user may enter: the sandbox runs PR code as other users.
        Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = create_async_engine(url)
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_synchronous))
    return engine


def create_sqlite_writer(database_url: str, *, sqlite_synchronous: str) -> SqliteWriter:
    """A dedicated writer thread for a SQLite URL (see SqliteWriter)."""
    url = async_url(database_url).set(drivername="sqlite")
    engine = sa.create_engine(
        url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False}
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas(sqlite_synchronous))
    return SqliteWriter(engine)


class SqliteWriter:
    """Runs write transactions on one dedicated thread with its own SQLite connection.

    The hot path (storing a batch of deliveries) then costs one hand-off to the thread per
    batch, instead of one per statement, fetch and commit through the async driver.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._closed = False

    async def run(
        self,
        work: Callable[Concatenate[sa.Connection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Run `work(connection, ...)` in one transaction on the writer thread."""

        def in_transaction() -> _T:
            with self._engine.begin() as conn:
                return work(conn, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._thread, in_transaction)

    async def close(self) -> None:
        """Finish queued work, close the connection and stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=False)


def _sqlite_pragmas(synchronous: str) -> Any:
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError("sqlite synchronous must be NORMAL or FULL")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL + NORMAL: a commit is durable once in the WAL file, so it survives the process
        # being killed; only an OS crash or power loss can drop the last commits. FULL also
        # fsyncs the WAL on every commit and survives power loss.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return on_connect
