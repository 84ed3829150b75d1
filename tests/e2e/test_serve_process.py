"""`connector-gate serve` as a real process, against the fake GitHub and OSV as processes too."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import EXAMPLES, INSTALLATION, REPO, RULES, pull_payload
from tests.e2e.process_helpers import (
    FakeProcess,
    ServeProcess,
    copy_connector,
    deliver,
    serve_env,
    start_fake_github,
    start_osv,
)
from tests.fakegithub.keys import AppKeyPair, generate_app_key

SECRET = "serve-process-webhook-secret-7f3a"
CHECK_RUNS = {
    f"connector-gate/{n}"
    for n in ("manifest", "secrets", "dependencies", "static", "tests", "performance", "gate")
}
CONNECTOR = "connectors/acme-weather"
#: Pull requests of the fake, one per scenario, each with its own head commit.
OPENED, SYNCHRONIZED, KILLED, TERMINATED = 21, 22, 23, 24
#: Requests to GitHub one `synchronize` of a one-connector PR may cost.
API_BUDGET = 20
#: Shutdown grace given to the process in the SIGTERM scenario.
GRACE_S = 5.0
#: What an installation token of the fake looks like (GitHub's `ghs_` prefix).
TOKEN_PATTERN = re.compile(r"ghs_[A-Za-z0-9_-]{20,}")


def head_sha(number: int) -> str:
    return f"{number:02d}" * 20


@dataclass
class World:
    """Everything the processes share: folders, the App key, the fake GitHub and OSV."""

    root: Path
    key: AppKeyPair
    key_file: Path
    fake: FakeProcess
    osv_url: str
    serve_logs: list[Path] = field(default_factory=list)

    def env(self, database: Path, **extra: str) -> dict[str, str]:
        settings = {
            "GITHUB_APP_ID": "1",
            "GITHUB_PRIVATE_KEY_PATH": str(self.key_file),
            "GITHUB_WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": self.fake.url,
            "CONNECTOR_GATE_DATABASE_URL": f"sqlite:///{database}",
            "CONNECTOR_GATE_OSV_URL": self.osv_url,
            "CONNECTOR_GATE_WORK_DIR": str(self.root / "work"),
            "CONNECTOR_GATE_WORKERS": "2",
            **extra,
        }
        return serve_env(os.environ, **settings)

    def serve(self, name: str, database: Path, **extra: str) -> ServeProcess:
        log = self.root / f"serve-{name}.log"
        self.serve_logs.append(log)
        return ServeProcess(self.env(database, **extra), log)


def _state(tree: str) -> dict[str, Any]:
    manifest = EXAMPLES / "acme-weather"
    files = [
        {"filename": f"{CONNECTOR}/{p.relative_to(manifest).as_posix()}", "patch": None}
        for p in sorted(manifest.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    numbers = (OPENED, SYNCHRONIZED, KILLED, TERMINATED)
    return {
        "installations": [{"id": INSTALLATION, "account": "acme", "repos": [REPO]}],
        "repos": [
            {
                "full_name": REPO,
                "files": {"main": {".github/connector-gate.yml": RULES}},
                "tarball_dirs": {head_sha(n): tree for n in numbers},
            }
        ],
        "pulls": [
            {"repo": REPO, "number": n, "head_sha": head_sha(n), "files": files} for n in numbers
        ],
        "teams": [
            {"org": "acme", "slug": "security", "members": {"sam": "member"}},
            {"org": "acme", "slug": "ops", "members": {"olga": "member"}},
        ],
    }


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # The sandbox runs connector code as another uid: its folders must be reachable.
    root = Path(tempfile.mkdtemp(prefix="connector-gate-serve-"))
    root.chmod(0o755)
    key = generate_app_key()
    key_file = root / "app-private.pem"
    key_file.touch(0o600)
    key_file.write_text(key.private_pem)
    copy_connector(EXAMPLES / "acme-weather", root / "tree" / CONNECTOR)
    fake = start_fake_github(root, key.public_pem, _state("tree"))
    osv, osv_url = start_osv(root)
    try:
        yield World(root, key, key_file, fake, osv_url)
    finally:
        fake.process.stop()
        osv.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def main_serve(world: World) -> Iterator[ServeProcess]:
    """One App process shared by the scenarios that do not stop it."""
    serve = world.serve("main", world.root / "main.db")
    yield serve
    serve.process.stop()


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as client:
        yield client


async def runs_of(world: World, session: aiohttp.ClientSession, sha: str) -> dict[str, list[Any]]:
    recorded = await world.fake.control(session, "recorded")
    found: dict[str, list[Any]] = {}
    for run in recorded["check_runs"]:
        if run["head_sha"] == sha:
            found.setdefault(run["name"], []).append(run)
    return found


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 240) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.1)


def all_completed(runs: dict[str, list[Any]]) -> bool:
    return set(runs) == CHECK_RUNS and all(
        r["status"] == "completed" for v in runs.values() for r in v
    )


def delivery_status(database: Path, delivery_id: str) -> str | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT status FROM deliveries WHERE delivery_id = ?", (delivery_id,))
        found = row.fetchone()
    return None if found is None else str(found[0])


def job_done(database: Path, delivery_id: str) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return delivery_status(database, delivery_id) == "done"

    return done


def checks_completed(
    world: World, session: aiohttp.ClientSession, sha: str
) -> Callable[[], Awaitable[bool]]:
    async def completed() -> bool:
        return all_completed(await runs_of(world, session, sha))

    return completed


def assert_no_secret_in(text: str, world: World) -> None:
    assert SECRET not in text, "the webhook secret was logged"
    pem_lines = [
        line for line in world.key.private_pem.splitlines() if line and not line.startswith("-----")
    ]
    assert not [line for line in pem_lines if line in text], "a line of the private key was logged"
    assert "PRIVATE KEY" not in text
    assert not TOKEN_PATTERN.search(text), "an installation token was logged"


async def test_clean_connector_pr_gets_six_check_runs_and_the_gate(
    world: World, main_serve: ServeProcess, session: aiohttp.ClientSession
) -> None:
    await main_serve.wait_ready()
    sha = head_sha(OPENED)
    payload = pull_payload("opened", OPENED, sha)

    started = time.monotonic()
    assert await deliver(session, main_serve.url, SECRET, "pull_request", payload) == 202
    await wait_until(checks_completed(world, session, sha))
    print(f"\nopened, cold cache: last check run completed {time.monotonic() - started:.2f} s")

    runs = await runs_of(world, session, sha)
    assert {name: len(found) for name, found in runs.items()} == dict.fromkeys(CHECK_RUNS, 1)
    for name in CHECK_RUNS - {"connector-gate/gate"}:
        assert runs[name][0]["conclusion"] == "success", (name, runs[name][0]["output"])
    gate = runs["connector-gate/gate"][0]
    assert gate["conclusion"] == "action_required", gate["output"]
    assert "security" in gate["output"]["summary"] and "ops" in gate["output"]["summary"]
    assert await world.fake.control(session, "violations") == []
    assert_no_secret_in(main_serve.process.output(), world)


async def test_one_synchronize_stays_within_the_api_budget(
    world: World, main_serve: ServeProcess, session: aiohttp.ClientSession
) -> None:
    await main_serve.wait_ready()
    sha, delivery_id = head_sha(SYNCHRONIZED), f"budget-{uuid.uuid4()}"
    before = len(await world.fake.control(session, "requests"))
    payload = pull_payload("synchronize", SYNCHRONIZED, sha)

    started = time.monotonic()
    assert (
        await deliver(session, main_serve.url, SECRET, "pull_request", payload, delivery_id) == 202
    )
    await wait_until(checks_completed(world, session, sha))
    elapsed = time.monotonic() - started
    await wait_until(job_done(world.root / "main.db", delivery_id), 60)

    made = (await world.fake.control(session, "requests"))[before:]
    listing = "\n".join(f"{r['method']} {r['path']} -> {r['status']}" for r in made)
    token_posts = [r for r in made if r["operation"] == "apps/create-installation-access-token"]
    writes = [r for r in made if r["method"] in ("POST", "PATCH", "PUT") and r not in token_posts]
    # Whether this process already holds a token and its App's record depends on the tests
    # run before this one: the budget counts one token mint (a token lasts an hour) and not
    # the App's record (read once per process), whichever tests ran first.
    once_per_process = [r for r in made if r["path"] == "/app"]
    review = [r for r in made if r not in token_posts and r not in once_per_process]
    print(
        f"\nsynchronize: {len(made)} requests ({len(writes)} writes, {len(token_posts)} token,"
        f" {len(once_per_process)} once per process); {len(review)} for the review itself"
    )
    print(f"delivery to last check run completed: {elapsed:.2f} s\n{listing}")
    assert len(token_posts) <= 1 and len(once_per_process) <= 1, listing
    assert len(review) + 1 <= API_BUDGET, listing
    # Seven check runs, one each, and the sticky comment: nothing is written twice.
    assert len(writes) <= len(CHECK_RUNS) + 2, listing


async def test_kill_9_after_202_loses_nothing(world: World, session: aiohttp.ClientSession) -> None:
    database = world.root / "killed.db"
    sha, delivery_id = head_sha(KILLED), f"killed-{uuid.uuid4()}"
    first = world.serve("killed-1", database, CONNECTOR_GATE_JOB_LEASE_SECONDS="4")
    try:
        await first.wait_ready()
        payload = pull_payload("opened", KILLED, sha)
        assert (
            await deliver(session, first.url, SECRET, "pull_request", payload, delivery_id) == 202
        )
        first.process.signal(signal.SIGKILL)
        assert first.process.wait(10) == -signal.SIGKILL
    finally:
        first.process.stop()
    assert delivery_status(database, delivery_id) in ("queued", "running")

    second = world.serve("killed-2", database, CONNECTOR_GATE_JOB_LEASE_SECONDS="4")
    try:
        await second.wait_ready()
        await wait_until(checks_completed(world, session, sha))
        await wait_until(job_done(database, delivery_id), 60)
        runs = await runs_of(world, session, sha)
        assert {name: len(found) for name, found in runs.items()} == dict.fromkeys(CHECK_RUNS, 1)
        assert runs["connector-gate/gate"][0]["conclusion"] == "action_required"
        assert_no_secret_in(first.process.output() + second.process.output(), world)
    finally:
        second.process.stop()


async def test_sigterm_mid_review_exits_cleanly_within_the_grace_period(
    world: World, session: aiohttp.ClientSession
) -> None:
    database = world.root / "terminated.db"
    sha, delivery_id = head_sha(TERMINATED), f"terminated-{uuid.uuid4()}"
    # Its own work folder: no cached results, so the checks are still running at SIGTERM.
    serve = world.serve(
        "terminated",
        database,
        CONNECTOR_GATE_SHUTDOWN_GRACE_SECONDS=str(GRACE_S),
        CONNECTOR_GATE_WORK_DIR=str(world.root / "work-terminated"),
    )
    try:
        await serve.wait_ready()
        payload = pull_payload("opened", TERMINATED, sha)
        assert (
            await deliver(session, serve.url, SECRET, "pull_request", payload, delivery_id) == 202
        )

        async def reviewing() -> bool:
            return "connector-gate/gate" in await runs_of(world, session, sha)

        await wait_until(reviewing, 60)
        stopped = time.monotonic()
        serve.process.signal(signal.SIGTERM)
        code = await asyncio.to_thread(serve.process.wait, GRACE_S + 10)
        took = time.monotonic() - stopped
        output = serve.process.output()
        print(f"\nSIGTERM to exit: {took:.2f} s; delivery {delivery_status(database, delivery_id)}")
        assert code == 0, output[-3000:]
        assert took < GRACE_S + 5, f"took {took:.1f} s"
        assert "Traceback" not in output, output[-3000:]
        # A job cut short at the end of the grace period goes back to the queue.
        assert delivery_status(database, delivery_id) in ("queued", "done")
        assert_no_secret_in(output, world)
    finally:
        serve.process.stop()


def intake_of(serve: ServeProcess) -> int:
    """The pid of the intake process serve started (the one that listens)."""
    for task in Path(f"/proc/{serve.process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"bot.intake" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    raise AssertionError("serve runs no intake process")


async def test_the_intake_holds_no_app_setting_and_is_replaced_when_it_dies(
    world: World, main_serve: ServeProcess, session: aiohttp.ClientSession
) -> None:
    await main_serve.wait_ready()
    first = intake_of(main_serve)
    environ = Path(f"/proc/{first}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith((b"GITHUB_", b"CONNECTOR_GATE_"))]
    assert world.key.private_pem.encode()[40:80] not in b"".join(environ)

    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(60):
        while not await _replaced(session, main_serve, first):
            await asyncio.sleep(0.1)
    assert main_serve.process.exited() is None
    # A closed PR: stored and handled, without starting another review.
    payload = pull_payload("closed", OPENED, head_sha(OPENED))
    assert await deliver(session, main_serve.url, SECRET, "pull_request", payload) == 202
    assert "intake process exited" in main_serve.process.output()
    async with session.get(f"{main_serve.url}/metrics") as response:
        assert "connector_gate_intake_starts_total 2.0" in await response.text()


async def _replaced(session: aiohttp.ClientSession, serve: ServeProcess, old: int) -> bool:
    try:
        async with session.get(f"{serve.url}/readyz") as response:
            return response.status == 200 and intake_of(serve) != old
    except (aiohttp.ClientError, AssertionError, OSError):
        return False


@pytest.mark.parametrize(
    ("variable", "change"),
    [
        ("GITHUB_APP_ID", lambda env, _root: env.pop("GITHUB_APP_ID")),
        (
            "GITHUB_PRIVATE_KEY_PATH",
            lambda env, root: env.update(GITHUB_PRIVATE_KEY_PATH=str(root)),
        ),
        ("GITHUB_WEBHOOK_SECRET", lambda env, _root: env.update(GITHUB_WEBHOOK_SECRET=" ")),
    ],
)
def test_bad_settings_exit_2_naming_the_variable(
    world: World, variable: str, change: Callable[[dict[str, str], Path], Any]
) -> None:
    env = world.env(world.root / "never.db")
    change(env, _broken_key_file(world))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert variable in result.stderr
    assert_no_secret_in(output, world)
    assert not (world.root / "never.db").exists(), "nothing starts with bad settings"


def test_an_unusable_payload_folder_stops_the_start_with_its_cause(world: World) -> None:
    database = world.root / "blocked.db"
    (world.root / "blocked.db-payloads").write_text("a file where the folder should be")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        env={**world.env(database), "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot start: the delivery writer did not start" in result.stderr
    assert "FileExistsError" in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret_in(result.stdout + result.stderr, world)


def _broken_key_file(world: World) -> Path:
    """The real key with its middle cut out: looks like a PEM, is not one."""
    lines = world.key.private_pem.splitlines()
    broken = world.root / "broken-key.pem"
    broken.write_text("\n".join(lines[:5] + lines[-5:]) + "\n")
    return broken


def test_no_secret_in_any_serve_log(world: World) -> None:
    # Runs last in this module: every serve process of the scenarios above wrote its log.
    logs = [log for log in world.serve_logs if log.exists()]
    for log in logs:
        assert_no_secret_in(log.read_text("utf-8", "replace"), world)
