"""Crash safety: a delivery answered 202 survives kill -9 of the App and is handled later."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.storage import DeliveryStatus, Storage
from bot.webhooks import sign

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("serve_app.py")
OPENED = (ROOT / "tests/fixtures/webhooks/pull_request/opened.json").read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AppProcess:
    """The App started by serve() in a real child process."""

    def __init__(self, env: dict[str, str], mode: str, record: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self.port), mode, str(record)],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=self._log,
            stderr=self._log,
        )

    async def wait_alive(self) -> None:
        async with asyncio.timeout(30), aiohttp.ClientSession() as session:
            while not await self._ready(session):
                assert self.process.poll() is None, "the App exited during start-up"
                await asyncio.sleep(0.1)

    async def _ready(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def children(self) -> list[int]:
        """The processes the App started (with SQLite: its delivery writer)."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log.close()


@pytest.fixture
def app_processes() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for process in started:
        process.close()


async def wait_for(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not check():
            await asyncio.sleep(0.05)


async def deliver(url: str, delivery_id: str, secret: str) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(OPENED, secret),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/webhook", data=OPENED, headers=headers) as response,
    ):
        return response.status


async def test_accepted_deliveries_survive_kill_9(
    private_key_pem: str,
    database_url: str,
    tmp_path: Path,
    app_processes: list[AppProcess],
) -> None:
    env = {
        "GITHUB_APP_ID": "1234",
        "GITHUB_PRIVATE_KEY": private_key_pem,
        "GITHUB_WEBHOOK_SECRET": "crash-test-secret",
        "CONNECTOR_GATE_DATABASE_URL": database_url,
        "CONNECTOR_GATE_WORKERS": "1",
        "CONNECTOR_GATE_JOB_LEASE_SECONDS": "1",
    }
    record, log = tmp_path / "handled.txt", tmp_path / "app.log"
    running_id, queued_id = f"running-{uuid.uuid4()}", f"queued-{uuid.uuid4()}"

    first = AppProcess(env, "block", record, log)
    app_processes.append(first)
    await first.wait_alive()
    assert await deliver(first.url, running_id, "crash-test-secret") == 202
    await wait_for(record.with_suffix(".started").exists)
    assert await deliver(first.url, queued_id, "crash-test-secret") == 202
    writers = first.children()
    assert writers or not database_url.startswith("sqlite")
    first.kill()
    # A writer process whose server died ends too (its input closes), nothing left behind.
    await wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in writers))

    storage = Storage.from_url(database_url)
    try:
        interrupted = await storage.get_delivery(running_id)
        waiting = await storage.get_delivery(queued_id)
        assert interrupted is not None and interrupted.status is DeliveryStatus.RUNNING
        assert waiting is not None and waiting.status is DeliveryStatus.QUEUED

        second = AppProcess(env, "record", record, log)
        app_processes.append(second)
        await second.wait_alive()
        await wait_for(lambda: record.exists() and len(record.read_text().split()) == 2)
        # The handler records a delivery just before its job is marked done: wait for both.
        async with asyncio.timeout(30):
            while await storage.count_deliveries(DeliveryStatus.DONE) < 2:
                await asyncio.sleep(0.05)
        assert sorted(record.read_text().split()) == sorted([running_id, queued_id])
    finally:
        await storage.close()
