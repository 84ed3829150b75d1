"""Webhook fixtures: a real App (aiohttp test server) over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.app import STORAGE_KEY, create_app
from bot.jobs import Handler
from bot.settings import Settings
from bot.storage import Storage
from bot.webhooks import sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "current-webhook-secret"
OLD_SECRET = "previous-webhook-secret"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/test", timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # Its own thread and loop: the fixture may be first requested from inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"cg_webhooks_{uuid.uuid4().hex[:10]}"
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
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.db'}"
    url: str = request.getfixturevalue("pg_database")
    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
    return url


@pytest.fixture
def make_settings(
    private_key_pem: str, tmp_path: Path, database_url: str
) -> Callable[..., Settings]:
    def build(**env: str) -> Settings:
        environ = {
            "GITHUB_APP_ID": "1234",
            "GITHUB_PRIVATE_KEY": private_key_pem,
            "GITHUB_WEBHOOK_SECRET": f"{OLD_SECRET},{SECRET}",
            "CONNECTOR_GATE_DATABASE_URL": database_url,
            "CONNECTOR_GATE_WORK_DIR": str(tmp_path / "work"),
            **env,
        }
        return Settings.from_env(environ)

    return build


@dataclass
class Gate:
    """A running App and ways to talk to it."""

    client: TestClient[Any, Any]
    storage: Storage
    secret: str = SECRET
    old_secret: str = OLD_SECRET

    async def deliver(
        self,
        event: str,
        body: bytes,
        *,
        delivery_id: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        """POST a signed delivery the way GitHub does."""
        sent = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, secret or self.secret),
            "User-Agent": "GitHub-Hookshot/test",
        }
        sent.update(headers or {})
        return await self.client.post("/webhook", data=body, headers=sent)


StartGate = Callable[..., Awaitable[Gate]]


@pytest.fixture
async def start_gate(make_settings: Callable[..., Settings]) -> AsyncIterator[StartGate]:
    """Start Apps (settings from env overrides, optional handler); all stop after the test."""
    started: list[Gate] = []

    async def start(handler: Handler | None = None, **env: str) -> Gate:
        app = create_app(make_settings(**env), handler=handler)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        started.append(Gate(client=client, storage=app[STORAGE_KEY]))
        return started[-1]

    yield start
    for running in started:
        await running.client.close()


@pytest.fixture
async def gate(start_gate: StartGate) -> Gate:
    """The App without a handler: deliveries are stored and stay queued."""
    return await start_gate()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
