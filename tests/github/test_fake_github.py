"""The fake GitHub itself: its OpenAPI validation, authentication, faults and standalone mode."""

from __future__ import annotations

import asyncio
import io
import json
import random
import sys
import tarfile
import time
from pathlib import Path

import aiohttp
import jwt
import pytest

from bot.github import GitHubApp, RetryPolicy
from tests.fakegithub import (
    FakeGitHub,
    build_tarball,
    hardlink,
    huge_file,
    raw_file,
    symlink,
)
from tests.fakegithub.keys import AppKeyPair
from tests.fakegithub.server import Reply
from tests.github.conftest import INSTALLATION, REPO, ManualClock, RecordingSleep

SHA = "c" * 40
PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def _token(app: GitHubApp) -> str:
    return await app.tokens.token(INSTALLATION)


async def test_invalid_body_is_refused_and_recorded(
    fake: FakeGitHub, app: GitHubApp, http_session: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"token {await _token(app)}"}
    url = f"{fake.url}/repos/{REPO.full_name}/check-runs"
    async with http_session.post(url, json={"name": "x"}, headers=headers) as resp:
        assert resp.status == 422
        assert "head_sha" in (await resp.json())["message"]
    async with http_session.post(
        url, json={"name": "x", "head_sha": SHA, "conclusion": "error"}, headers=headers
    ) as resp:
        assert resp.status == 422
    kinds = [(v.kind, v.operation) for v in fake.violations]
    assert kinds == [("invalid-request", "checks/create")] * 2
    assert fake.recorded.check_runs == {}
    with pytest.raises(AssertionError, match="invalid-request"):
        fake.assert_no_violations()


async def test_bad_path_parameter_and_unknown_operation(
    fake: FakeGitHub, app: GitHubApp, http_session: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"token {await _token(app)}"}
    async with http_session.get(
        f"{fake.url}/repos/{REPO.full_name}/pulls/abc", headers=headers
    ) as r:
        assert r.status == 422
    async with http_session.get(f"{fake.url}/repos/{REPO.full_name}", headers=headers) as r:
        assert r.status == 404  # GET /repos/{owner}/{repo} is not in the subset
    assert [v.kind for v in fake.violations] == ["invalid-request", "unknown-operation"]


async def test_too_many_annotations_violate_the_spec(
    fake: FakeGitHub, app: GitHubApp, http_session: aiohttp.ClientSession
) -> None:
    run = await app.installation(INSTALLATION).create_check_run(
        REPO, name="static", head_sha=SHA, external_id="j"
    )
    note = {
        "path": "a.py",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "notice",
        "message": "m",
    }
    body = {"output": {"title": "t", "summary": "s", "annotations": [note] * 51}}
    headers = {"Authorization": f"token {await _token(app)}"}
    url = f"{fake.url}/repos/{REPO.full_name}/check-runs/{run.id}"
    async with http_session.patch(url, json=body, headers=headers) as resp:
        assert resp.status == 422
    assert fake.violations[0].operation == "checks/update"


async def test_bad_response_is_recorded(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    fake.op_pulls_list_reviews = lambda call: Reply(200, [{"id": "not-a-number"}])  # type: ignore[method-assign]
    with pytest.raises(Exception, match="malformed review"):
        await app.installation(INSTALLATION).list_reviews(REPO, 1)
    assert [v.kind for v in fake.violations] == ["invalid-response"]


async def test_requests_without_valid_credentials_get_401(
    fake: FakeGitHub,
    app: GitHubApp,
    http_session: aiohttp.ClientSession,
    github_app_key: AppKeyPair,
    clock: ManualClock,
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    pull_url = f"{fake.url}/repos/{REPO.full_name}/pulls/1"
    async with http_session.get(pull_url) as resp:
        assert resp.status == 401
    async with http_session.get(pull_url, headers={"Authorization": "token ghs_forged"}) as resp:
        assert resp.status == 401
    token = await _token(app)
    clock.advance(3601)
    async with http_session.get(pull_url, headers={"Authorization": f"token {token}"}) as resp:
        assert resp.status == 401  # expired
    now = int(clock())
    too_long = jwt.encode(
        {"iat": now, "exp": now + 3600, "iss": "1"}, github_app_key.private_pem, "RS256"
    )
    wrong_app = jwt.encode(
        {"iat": now, "exp": now + 300, "iss": "2"}, github_app_key.private_pem, "RS256"
    )
    for bad in (too_long, wrong_app, "not-a-jwt"):
        async with http_session.get(
            f"{fake.url}/app", headers={"Authorization": f"Bearer {bad}"}
        ) as resp:
            assert resp.status == 401
    fake.assert_no_violations()


async def test_token_of_another_installation_cannot_see_repo(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    fake.add_installation(43, "other")
    fake.add_pull(REPO.full_name, 1, SHA)
    with pytest.raises(Exception, match="404"):
        await app.installation(43).get_pull_request(REPO, 1)


async def test_slow_answer_times_out_and_is_retried(
    fake: FakeGitHub,
    github_app_key: AppKeyPair,
    http_session: aiohttp.ClientSession,
    sleeps: RecordingSleep,
    clock: ManualClock,
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    app = GitHubApp(
        http_session,
        app_id=1,
        private_key=github_app_key.private_pem,
        base_url=fake.url,
        sleep=sleeps,
        clock=clock,
        rng=random.Random(1),
        policy=RetryPolicy(request_timeout=0.3),
    )
    fake.delay_next(1, 1.0, path="/pulls/1")
    pull = await app.installation(INSTALLATION).get_pull_request(REPO, 1)
    assert pull.number == 1 and len(sleeps.delays) == 1


def test_hostile_tarball_members() -> None:
    data = build_tarball(
        "acme-connectors-ccccccc",
        {"ok.py": b"x = 1\n"},
        extra=[
            symlink("acme-connectors-ccccccc/passwd"),
            hardlink("acme-connectors-ccccccc/hard", "/etc/passwd"),
            raw_file("acme-connectors-ccccccc/../../escape.txt"),
            raw_file("/tmp/absolute.txt"),
            huge_file("acme-connectors-ccccccc/big.bin", 20_000_000),
        ],
    )
    assert len(data) < 100_000  # zeros compress: a small download that expands hugely
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["acme-connectors-ccccccc/passwd"].issym()
    assert members["acme-connectors-ccccccc/passwd"].linkname == "/etc/passwd"
    assert members["acme-connectors-ccccccc/hard"].islnk()
    assert "acme-connectors-ccccccc/../../escape.txt" in members
    assert "/tmp/absolute.txt" in members
    assert members["acme-connectors-ccccccc/big.bin"].size == 20_000_000


def test_tarball_from_directory(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    data = build_tarball("o-r-1234567", tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        extracted = archive.extractfile("o-r-1234567/pkg/m.py")
        assert extracted is not None and extracted.read() == b"x = 1\n"


async def test_standalone_process(
    tmp_path: Path, github_app_key: AppKeyPair, http_session: aiohttp.ClientSession
) -> None:
    key_file = tmp_path / "app.pub"
    key_file.write_text(github_app_key.public_pem)
    state = {
        "installations": [{"id": 5, "account": "acme"}],
        "repos": [{"full_name": "acme/connectors", "files": {"main": {"README.md": "hi\n"}}}],
        "pulls": [
            {
                "repo": "acme/connectors",
                "number": 3,
                "head_sha": SHA,
                "files": ["connectors/a/connector.yaml"],
                "author": "dev",
            }
        ],
        "teams": [{"org": "acme", "slug": "ops", "members": {"olga": "member"}}],
    }
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    port_file = tmp_path / "port"
    process = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "tests.fakegithub",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--state",
            str(state_file),
            "--public-key",
            str(key_file),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            assert process.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        app = GitHubApp(
            http_session, app_id=1, private_key=github_app_key.private_pem, base_url=url
        )
        client = app.installation(5)
        pull = await client.get_pull_request(REPO, 3)
        assert (pull.author, pull.head_sha) == ("dev", SHA)
        assert await client.is_team_member("acme", "ops", "olga")
        assert await client.get_file_contents(REPO, "README.md") == b"hi\n"
        await client.ensure_check_run(REPO, name="gate", head_sha=SHA, external_id="1")
        async with http_session.get(f"{url}/_fake/recorded") as resp:
            recorded = await resp.json()
        assert [r["name"] for r in recorded["check_runs"]] == ["gate"]
        async with http_session.get(f"{url}/_fake/violations") as resp:
            assert await resp.json() == []
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
