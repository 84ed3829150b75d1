"""End-to-end fixtures: the real App (aiohttp server, SQLite, workers) against the fake GitHub."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import STORAGE_KEY, create_app
from bot.dispatch import handler_factory
from bot.settings import Settings
from bot.storage import Storage
from bot.webhooks.signature import sign
from tests.fakegithub.keys import AppKeyPair
from tests.fakegithub.plugin import fake_github, github_app_key
from tests.fakegithub.server import FakeGitHub
from tests.fakegithub.state import FakePullFile
from tests.support.osv_server import running_osv_server

__all__ = ["fake_github", "github_app_key"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "connectors"
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
SECRET = "e2e-webhook-secret"
INSTALLATION = 42
REPO = "acme/connectors"
RULES = """\
connectors: ["connectors/*"]
manifest:
  allowed_scopes:
    api_key: ["forecast:read"]
    oauth2: ["notes:read"]
approvals:
  - name: security
    teams: [security]
  - name: ops
    teams: [ops]
performance:
  duration_s: 2
  vus: 2
"""


def connector_files(name: str, prefix: str = "connectors") -> dict[str, bytes]:
    root = EXAMPLES / name
    return {
        f"{prefix}/{name}/{p.relative_to(root).as_posix()}": p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@dataclass
class Gate:
    """The running App and what a test needs to drive it."""

    url: str
    fake: FakeGitHub
    session: aiohttp.ClientSession
    storage: Storage | None = None
    """The App's own storage (audit log, waivers), to assert on what it recorded."""

    async def deliver(self, event: str, payload: dict[str, Any], delivery: str = "") -> int:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, SECRET),
        }
        async with self.session.post(f"{self.url}/webhook", data=body, headers=headers) as resp:
            return resp.status

    def runs(self, head_sha: str) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for run in self.fake.recorded.check_runs.values():
            if run["head_sha"] == head_sha:
                found.setdefault(run["name"], []).append(run)
        return found

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 240) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
            await asyncio.sleep(0.2)

    def patches(self, run_id: int) -> int:
        return sum(1 for p in self.fake.recorded.check_run_patches if p.get("id") == run_id)

    async def gate_done(self, head_sha: str, min_patches: int = 1) -> dict[str, Any]:
        """The gate run once completed (and patched at least `min_patches` times)."""

        def done() -> bool:
            gate = self.runs(head_sha).get("connector-gate/gate", [])
            return (
                bool(gate)
                and gate[0]["status"] == "completed"
                and (self.patches(gate[0]["id"]) >= min_patches)
            )

        await self.wait_for(done)
        return self.runs(head_sha)["connector-gate/gate"][0]


def pull_payload(action: str, number: int, head_sha: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "pull_request" / "opened.json").read_text())
    payload["action"] = action
    payload["installation"] = {"id": INSTALLATION, "node_id": "x"}
    payload["repository"]["full_name"] = REPO
    payload["repository"]["name"] = "connectors"
    payload["repository"]["owner"]["login"] = "acme"
    payload["pull_request"]["number"] = number
    payload["number"] = number
    payload["pull_request"]["head"]["sha"] = head_sha
    return payload


def add_pull(
    fake: FakeGitHub, number: int, head_sha: str, files: dict[str, bytes], **fields: Any
) -> None:
    fake.set_tarball(REPO, head_sha, files)
    fake.add_pull(
        REPO,
        number,
        head_sha,
        files=[FakePullFile(path, patch=_patch(data)) for path, data in files.items()],
        **fields,
    )


def _patch(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").splitlines()
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join(f"+{line}" for line in lines)


@pytest.fixture
async def gate(fake_github: FakeGitHub, github_app_key: AppKeyPair) -> AsyncIterator[Gate]:
    fake = fake_github
    fake.add_installation(INSTALLATION, "acme", [REPO])
    fake.add_repo(REPO, files={"main": {".github/connector-gate.yml": RULES}})
    fake.add_team("acme", "security", {"sam": "member"})
    fake.add_team("acme", "ops", {"olga": "member"})
    # The sandbox runs connector code as another uid: its folders must be reachable.
    work = Path(tempfile.mkdtemp(prefix="connector-gate-e2e-"))
    work.chmod(0o755)
    async with running_osv_server() as osv:
        settings = Settings(
            app_id=fake.app_id,
            private_key=github_app_key.private_pem,
            webhook_secrets=(SECRET,),
            api_url=fake.url,
            database_url=f"sqlite:///{work / 'gate.db'}",
            osv_url=osv.url,
            work_dir=work,
            workers=2,
        )
        server = TestServer(create_app(settings, handler_factory=handler_factory))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                url = str(server.make_url("")).rstrip("/")
                yield Gate(url, fake, session, server.app[STORAGE_KEY])
        finally:
            await server.close()
            shutil.rmtree(work, ignore_errors=True)
    fake.assert_no_violations()
