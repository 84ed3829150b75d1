"""Real processes for end-to-end tests: fake GitHub, local OSV and `connector-gate serve`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp

from bot.webhooks.signature import sign

ROOT = Path(__file__).resolve().parents[2]

#: How long a process may take to start listening (interpreter start plus imports, on a busy box).
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process whose stdout and stderr go to one log file."""

    def __init__(
        self, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.log = log
        self._log: IO[bytes] = log.open("ab")
        child_env = dict(env if env is not None else os.environ)
        child_env["PYTHONPATH"] = str(ROOT)
        self.process = subprocess.Popen(
            list(argv), env=child_env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return self.process.poll()

    def signal(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout_s)

    def stop(self) -> None:
        """Kill the process if it still runs and close its log (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def output(self) -> str:
        # The child writes straight to the file; ours is only the handle it inherited.
        return self.log.read_text("utf-8", "replace")


def wait_for_file(path: Path, process: Process, timeout_s: float = START_TIMEOUT_S) -> str:
    """The content of `path` once the process wrote it (it fails the test if the process dies)."""
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().strip()):
        assert process.exited() is None, f"process exited early:\n{process.output()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.05)
    return path.read_text().strip()


def start_fake_github(
    directory: Path, public_key_pem: str, state: Mapping[str, Any]
) -> FakeProcess:
    """`python -m tests.fakegithub` on a free port, loaded with `state` (paths under directory)."""
    key = directory / "app-public.pem"
    key.write_text(public_key_pem)
    state_file = directory / "fake-state.json"
    state_file.write_text(json.dumps(state))
    port_file = directory / "fake.port"
    argv = [sys.executable, "-m", "tests.fakegithub", "--public-key", str(key)]
    argv += ["--state", str(state_file), "--port-file", str(port_file)]
    process = Process(argv, directory / "fake-github.log")
    port = wait_for_file(port_file, process)
    return FakeProcess(process, f"http://127.0.0.1:{port}")


class FakeProcess:
    """The standalone fake GitHub and its control endpoints."""

    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url

    async def control(self, session: aiohttp.ClientSession, name: str) -> Any:
        """GET /_fake/<name>: `requests`, `recorded` or `violations`."""
        async with session.get(f"{self.url}/_fake/{name}") as response:
            response.raise_for_status()
            return await response.json()


def start_osv(directory: Path) -> tuple[Process, str]:
    """The local OSV service on a free port; its query URL once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.support.osv_server", "--port", str(port)]
    process = Process(argv, directory / "osv.log")
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}/v1/query"


def wait_for_port(port: int, process: Process, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.exited() is None, f"process exited early:\n{process.output()[-3000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.05)


class ServeProcess:
    """`connector-gate serve` as a real child process (`python -m bot.cli serve`)."""

    def __init__(self, env: Mapping[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"]
        self.process = Process([*argv, "--port", str(self.port)], log, env)

    async def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once GET /readyz answers 200."""
        async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as session:
            while not await self._ready(session):
                code = self.process.exited()
                assert code is None, f"serve exited ({code}):\n{self.process.output()[-3000:]}"
                await asyncio.sleep(0.1)

    async def _ready(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False


def serve_env(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    """The child's environment: ours minus GITHUB_* and CONNECTOR_GATE_*, plus `settings`."""
    kept = {k: v for k, v in base.items() if not k.startswith(("GITHUB_", "CONNECTOR_GATE_"))}
    return {**kept, **settings}


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    event: str,
    payload: Mapping[str, Any],
    delivery_id: str = "",
) -> int:
    """POST a signed webhook delivery; the status code."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret),
    }
    async with session.post(f"{url}/webhook", data=body, headers=headers) as response:
        return response.status


def copy_connector(source: Path, target: Path) -> None:
    """Copy an example connector without bytecode caches."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
