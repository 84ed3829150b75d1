"""PostgreSQL for the tests: a database per test run, and the SQLite/PostgreSQL URL fixture.

Tests skip the PostgreSQL half when no server answers at 127.0.0.1:5432, except under
CI=true, where an unreachable server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(sql: str) -> None:
    # Its own thread and loop: the fixture may be first requested from inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _execute(f"{PG_SERVER}/test", sql)).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"cg_test_{uuid.uuid4().hex[:10]}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_SERVER} is required under CI: {err}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} unreachable: {err}")
    yield f"{PG_SERVER}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database, for each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.db'}"
    url: str = request.getfixturevalue("pg_database")
    await _execute(url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    return url
