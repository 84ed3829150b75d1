"""Webhook fixtures: a real App (aiohttp test server) over SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from tests.support.postgres import database_url, pg_database

__all__ = ["database_url", "pg_database"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "current-webhook-secret"
OLD_SECRET = "previous-webhook-secret"


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


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
