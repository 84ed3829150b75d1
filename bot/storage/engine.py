"""Turns a configured database URL into an async SQLAlchemy engine with the right pragmas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.storage.models import StorageError
from bot.storage.sqlite_ingest import apply_pragmas

#: Execution option of a write transaction: on SQLite it begins IMMEDIATE (see _begin).
IMMEDIATE_OPTION = "connector_gate_immediate"


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
    sa.event.listen(engine.sync_engine, "begin", _begin)
    return engine


def _sqlite_pragmas(synchronous: str) -> Any:
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError("sqlite synchronous must be NORMAL or FULL")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        apply_pragmas(dbapi_connection, synchronous, None)
        # Transactions are begun by hand (see _begin), not by the driver before each write.
        dbapi_connection.isolation_level = None

    return on_connect


def _begin(conn: sa.Connection) -> None:
    # Another process (the delivery writer) commits to the same database at any time. A
    # transaction that read first and writes later would then fail at once (SQLITE_BUSY,
    # its snapshot is stale); one begun IMMEDIATE takes the write lock up front and waits
    # for it with the busy timeout instead. Reads begin deferred and never block anyone.
    immediate = conn.get_execution_options().get(IMMEDIATE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
