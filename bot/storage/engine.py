"""Turns a configured database URL into an async SQLAlchemy engine with the right pragmas."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.models import StorageError

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: How long a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000

#: WAL pages after which the writer checkpoints on its own, should the checkpointer fall behind.
WRITER_AUTOCHECKPOINT_PAGES = 16_000

#: Passive checkpoints in a row before the checkpointer waits for the next write.
_CHECKPOINT_PASSES = 4


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
    # No statement cache: a cached multi-row INSERT would keep its last batch's payloads
    # bound (megabytes per batch size), and preparing one per batch costs microseconds.
    connect_args = {"check_same_thread": False, "cached_statements": 0}
    engine = sa.create_engine(url, pool_size=1, max_overflow=0, connect_args=connect_args)
    on_connect = _sqlite_pragmas(sqlite_synchronous, WRITER_AUTOCHECKPOINT_PAGES)
    sa.event.listen(engine, "connect", on_connect)
    file = url.database if url.database and url.database != ":memory:" else None
    return SqliteWriter(engine, checkpoint_file=file)


class SqliteWriter:
    """Runs write transactions on one dedicated thread with its own SQLite connection.

    The hot path (storing a batch of deliveries) then costs one hand-off to the thread per
    batch, instead of one per statement, fetch and commit through the async driver.
    Checkpoints (copying the WAL into the database, with its fsyncs) run on a second thread,
    so a commit never waits for one.
    """

    def __init__(self, engine: sa.Engine, *, checkpoint_file: str | None = None) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._checkpointer = _Checkpointer(checkpoint_file) if checkpoint_file else None
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
                result = work(conn, *args, **kwargs)
            if self._checkpointer is not None:
                self._checkpointer.request()
            return result

        return await asyncio.get_running_loop().run_in_executor(self._thread, in_transaction)

    async def close(self) -> None:
        """Finish queued work, close the connections and stop the threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=False)
        if self._checkpointer is not None:
            await loop.run_in_executor(None, self._checkpointer.close)


class _Checkpointer:
    """Passive WAL checkpoints on their own thread and connection, one pass at a time."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._connection: sqlite3.Connection | None = None
        self._pending = False

    def request(self) -> None:
        """Ask for a checkpoint after a commit; a no-op while one is waiting to run."""
        if not self._pending:
            self._pending = True
            self._thread.submit(self._checkpoint)

    def close(self) -> None:
        """Wait for the running checkpoint, then close the connection (on its own thread)."""
        self._thread.submit(self._disconnect)
        self._thread.shutdown(wait=True)

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _checkpoint(self) -> None:
        self._pending = False
        try:
            connection = self._connect()
            # Frames committed during a pass stay behind; a few passes usually catch up, and
            # SQLite only starts the WAL over once every frame is back in the database.
            for _ in range(_CHECKPOINT_PASSES):
                _busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if done >= log:
                    return
        except sqlite3.Error:
            # Only housekeeping: the writer's own autocheckpoint still bounds the WAL.
            logger.warning("WAL checkpoint failed", exc_info=True)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._database, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            self._connection = connection
        return self._connection


def _sqlite_pragmas(synchronous: str, autocheckpoint_pages: int | None = None) -> Any:
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
        if autocheckpoint_pages is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages}")
        cursor.close()

    return on_connect
