"""POST /webhook and the health endpoints, through a real aiohttp server and real databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.intake.app import WRITER_KEY
from bot.storage import DeliveryStatus, ProcessDeliveryWriter
from bot.webhooks import MAX_BODY_BYTES, is_interesting

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
PAYLOADS = {f"{p.parent.name}/{p.stem}": p.read_bytes() for p in sorted(FIXTURES.glob("*/*.json"))}
OPENED = (FIXTURES / "pull_request" / "opened.json").read_bytes()


async def test_a_signed_delivery_is_stored_before_202(gate: Any) -> None:
    response = await gate.deliver("pull_request", OPENED, delivery_id="d-1")
    assert response.status == 202
    stored = await gate.storage.get_delivery("d-1")
    assert stored is not None
    assert stored.status is DeliveryStatus.QUEUED
    assert stored.payload == OPENED.decode()
    payload = json.loads(OPENED)
    assert stored.repo == payload["repository"]["full_name"]
    assert stored.installation_id == payload["installation"]["id"]
    assert (stored.event, stored.action) == ("pull_request", "opened")


async def test_forged_signature_is_401_and_nothing_stored(gate: Any) -> None:
    response = await gate.deliver("pull_request", OPENED, secret="an-attackers-guess")
    assert response.status == 401
    assert "signature does not match" in await response.text()
    assert await gate.storage.count_deliveries() == 0


async def test_missing_signature_is_401_and_nothing_stored(gate: Any) -> None:
    response = await _post_without_signature(gate, OPENED)
    assert response.status == 401
    assert "missing X-Hub-Signature-256" in await response.text()
    assert await gate.storage.count_deliveries() == 0


async def _post_without_signature(gate: Any, body: bytes, **extra: str) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **extra,
    }
    return await gate.client.post("/webhook", data=body, headers=headers)


async def test_sha1_only_signature_is_refused(gate: Any) -> None:
    response = await _post_without_signature(
        gate, OPENED, **{"X-Hub-Signature": "sha1=0123456789abcdef0123456789abcdef01234567"}
    )
    assert response.status == 401
    assert "X-Hub-Signature-256 is required" in await response.text()
    assert await gate.storage.count_deliveries() == 0


async def test_a_secret_being_rotated_out_still_verifies(gate: Any) -> None:
    response = await gate.deliver("pull_request", OPENED, secret=gate.old_secret)
    assert response.status == 202


async def test_form_encoded_delivery_is_415_with_advice(gate: Any) -> None:
    body = b"payload=" + OPENED[:100]
    response = await gate.deliver(
        "pull_request", body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    assert "set the webhook content type to application/json" in await response.text()
    assert await gate.storage.count_deliveries() == 0


async def test_malformed_json_is_400(gate: Any) -> None:
    response = await gate.deliver("pull_request", b'{"action": "opened",')
    assert response.status == 400
    assert await gate.storage.count_deliveries() == 0


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
async def test_missing_github_headers_are_400(gate: Any, missing: str) -> None:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-x",
    }
    del headers[missing]
    response = await gate.client.post("/webhook", data=OPENED, headers=headers)
    assert response.status == 400
    assert missing in await response.text()


async def test_body_over_25_mb_is_413_by_content_length(gate: Any) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    response = await gate.deliver("pull_request", body)
    assert response.status == 413
    assert await gate.storage.count_deliveries() == 0


async def test_chunked_body_over_25_mb_is_413_by_capped_read(gate: Any) -> None:
    chunk = b" " * (1024 * 1024)

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(26):
            yield chunk

    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "too-big",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
    }
    response = await gate.client.post("/webhook", data=stream(), headers=headers)
    assert response.status == 413
    assert await gate.storage.count_deliveries() == 0


async def test_ping_is_answered_and_not_queued(gate: Any) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    response = await gate.deliver("ping", body)
    assert response.status == 200
    assert await response.text() == "pong\n"
    assert await gate.storage.count_deliveries() == 0


async def test_uninteresting_events_are_ignored(gate: Any) -> None:
    response = await gate.deliver("star", json.dumps({"action": "created"}).encode())
    assert response.status == 200
    assert "ignored" in await response.text()
    assert await gate.storage.count_deliveries() == 0


async def test_a_replayed_delivery_is_200_and_stored_once(gate: Any) -> None:
    first = await gate.deliver("pull_request", OPENED, delivery_id="replayed")
    again = await gate.deliver("pull_request", OPENED, delivery_id="replayed")
    assert (first.status, again.status) == (202, 200)
    assert "already received" in await again.text()
    assert await gate.storage.count_deliveries() == 1


@pytest.mark.parametrize("name", PAYLOADS)
async def test_every_fixture_payload_is_accepted(gate: Any, name: str) -> None:
    body = PAYLOADS[name]
    event = name.split("/")[0]
    response = await gate.deliver(event, body, delivery_id=f"fixture-{name}")
    interesting = is_interesting(event, json.loads(body).get("action"))
    assert response.status == (202 if interesting else 200)
    stored = await gate.storage.get_delivery(f"fixture-{name}")
    if interesting:
        assert stored is not None and stored.payload == body.decode()
    else:  # issue_comment.edited is not an action the App acts on
        assert stored is None


async def test_installation_events_update_the_installations_table(gate: Any) -> None:
    created = json.loads((FIXTURES / "installation" / "created.json").read_bytes())
    deleted = json.loads((FIXTURES / "installation" / "deleted.json").read_bytes())
    # The same installation created, then uninstalled.
    deleted["installation"] = created["installation"]
    installation_id = created["installation"]["id"]
    assert (await gate.deliver("installation", json.dumps(created).encode())).status == 202
    assert await gate.storage.installation_active(installation_id) is True
    assert (await gate.deliver("installation", json.dumps(deleted).encode())).status == 202
    assert await gate.storage.installation_active(installation_id) is False
    known = await gate.storage.installation(installation_id)
    assert known is not None and known.account == created["installation"]["account"]["login"]


async def test_200_concurrent_deliveries_are_all_stored(gate: Any) -> None:
    ids = [f"burst-{i}" for i in range(200)]
    responses = await asyncio.gather(
        *(gate.deliver("pull_request", OPENED, delivery_id=i) for i in ids)
    )
    assert [r.status for r in responses] == [202] * 200
    assert await gate.storage.count_deliveries() == 200


async def test_healthz_readyz_and_metrics(gate: Any) -> None:
    assert (await gate.client.get("/healthz")).status == 200
    ready = await gate.client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {
        "status": "ready",
        "database": "ok",
        "workers": "none",
        "writer": "running",
    }

    await gate.deliver("pull_request", OPENED, delivery_id="m-1")
    await gate.deliver("pull_request", OPENED, delivery_id="m-1")
    await gate.deliver("pull_request", OPENED, secret="forged")
    text = await (await gate.client.get("/metrics")).text()
    assert (
        'connector_gate_webhook_deliveries_total{outcome="accepted",reason="accepted"} 1.0' in text
    )
    assert (
        'connector_gate_webhook_deliveries_total{outcome="accepted",reason="duplicate"} 1.0' in text
    )
    assert (
        'connector_gate_webhook_deliveries_total{outcome="rejected",reason="bad_signature"} 1.0'
        in text
    )
    assert "connector_gate_queue_depth 1.0" in text
    assert "connector_gate_job_duration_seconds" in text


# Only SQLite has a writer process (PostgreSQL is written from the server's own event loop).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_dead_writer_process_is_replaced_by_the_next_delivery(gate: Any) -> None:
    writer = gate.client.server.app[WRITER_KEY]
    assert isinstance(writer, ProcessDeliveryWriter)
    first = writer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(10):
        while writer.state != "restarting":
            await asyncio.sleep(0.01)
    ready = await gate.client.get("/readyz")
    assert ready.status == 200  # the next delivery starts a new writer: nothing to wait for
    assert (await ready.json())["writer"] == "restarting"

    assert (await gate.deliver("pull_request", OPENED, delivery_id="after-kill")).status == 202
    assert writer.state == "running" and writer.pid not in (None, first)
    metrics = await (await gate.client.get("/metrics")).text()
    assert "connector_gate_delivery_writer_starts_total 2.0" in metrics
    assert await gate.storage.get_delivery("after-kill") is not None


async def test_readyz_fails_when_the_database_is_gone(gate: Any, database_url: str) -> None:
    await gate.storage.close()
    async with _database_unreachable(database_url):
        ready = await gate.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["database"] == "unreachable"
        assert (await gate.client.get("/healthz")).status == 200


@contextlib.asynccontextmanager
async def _database_unreachable(database_url: str) -> AsyncIterator[None]:
    if database_url.startswith("sqlite"):
        # A file that is not a database: every new connection fails for real.
        await asyncio.to_thread(_clobber, Path(database_url.removeprefix("sqlite:///")))
        yield
        return
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(database_url.rsplit("/", 1)[0] + "/test")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


def _clobber(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
