"""The intake as a real process, driven from the workers' side (IntakeProcess)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.intake.link import IntakeConfig, IntakeError, IntakeProcess, WorkersStatus
from bot.webhooks.signature import sign
from tests.support.sqlite import migrated_sqlite_file

SECRET = "intake-process-secret"
OPENED = Path(__file__).resolve().parents[1] / "fixtures/webhooks/pull_request/opened.json"


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    return await migrated_sqlite_file(tmp_path / "gate.db")


def config_for(database: Path, port: int) -> IntakeConfig:
    return IntakeConfig(
        host="127.0.0.1",
        port=port,
        webhook_secrets=(SECRET,),
        sqlite_file=str(database),
        database_url=f"sqlite:///{database}",
        sqlite_synchronous="NORMAL",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_stored_deliveries_wake_the_workers_and_status_reaches_readyz(
    database: Path,
) -> None:
    stored = asyncio.Event()
    asked: list[int] = []

    async def status() -> WorkersStatus:
        asked.append(1)
        return WorkersStatus(database="ok", workers="running", metrics="workers_probe 1.0\n")

    port = free_port()
    intake = IntakeProcess(config_for(database, port), on_stored=stored.set, status_source=status)
    await intake.start()
    try:
        body = OPENED.read_bytes()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "intake-process-1",
            "X-Hub-Signature-256": sign(body, SECRET),
        }
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/webhook", data=body, headers=headers) as response:
                assert response.status == 202
            await asyncio.wait_for(stored.wait(), 10)
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 200
                assert json.loads(await response.text())["workers"] == "running"
            async with session.get(f"{url}/metrics") as response:
                text = await response.text()
        assert "workers_probe 1.0" in text
        assert "connector_gate_webhook_deliveries_total" in text
        assert asked
    finally:
        await intake.stop()
    assert intake.pid is None


async def test_a_port_in_use_stops_the_start_naming_the_cause(database: Path) -> None:
    async def status() -> WorkersStatus:
        return WorkersStatus(database="ok", workers="none")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        intake = IntakeProcess(
            config_for(database, port), on_stored=lambda: None, status_source=status
        )
        with pytest.raises(IntakeError, match="address already in use"):
            await intake.start()
