"""Storage fixtures: every test runs on SQLite and on PostgreSQL (one database per run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.storage import Storage
from tests.support.postgres import database_url, pg_database

__all__ = ["database_url", "pg_database"]


class FakeClock:
    """A clock tests move by hand, so lease expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def storage(database_url: str, clock: FakeClock) -> AsyncIterator[Storage]:
    """Migrated storage over an empty database, with a hand-moved clock."""
    store = Storage.from_url(database_url, max_attempts=3, clock=clock)
    await store.migrate()
    yield store
    await store.close()
