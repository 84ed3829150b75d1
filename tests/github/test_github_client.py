"""The GitHub client against the fake GitHub: auth, retries, pagination, check runs, downloads."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import aiohttp
import pytest

from bot.github import (
    Annotation,
    CheckRunOutput,
    GitHubApp,
    GitHubUnavailable,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    ReviewComment,
)
from bot.github.auth import JWT_BACKDATE_S, make_app_jwt
from tests.fakegithub import AppKeyPair, FakeGitHub, FakePullFile, huge_file
from tests.github.conftest import INSTALLATION, REPO, ManualClock, RecordingSleep

SHA = "a" * 40


async def test_app_jwt_is_accepted(fake: FakeGitHub, app: GitHubApp) -> None:
    info = await app.app_info()
    assert (info.id, info.slug, info.bot_login) == (1, "connector-gate", "connector-gate[bot]")
    assert await app.repo_installation_id(REPO) == INSTALLATION
    assert [i.id for i in await app.installations()] == [INSTALLATION]
    fake.assert_no_violations()


def test_app_jwt_claims(github_app_key: AppKeyPair, clock: ManualClock) -> None:
    import jwt

    token, expires = make_app_jwt("1", github_app_key.private_pem, clock())
    claims = jwt.decode(token, github_app_key.public_pem, algorithms=["RS256"])
    assert claims["iss"] == "1"
    assert claims["iat"] == int(clock()) - JWT_BACKDATE_S
    assert claims["exp"] - clock() <= 600
    assert expires == claims["exp"]


async def test_wrong_key_is_refused(fake: FakeGitHub, app: GitHubApp) -> None:
    from tests.fakegithub import generate_app_key

    fake.public_key_pem = generate_app_key().public_pem
    with pytest.raises(Exception, match="401") as caught:
        await app.app_info()
    assert type(caught.value).__name__ == "Unauthorized"


async def test_token_cached_then_refreshed_near_expiry(
    fake: FakeGitHub, app: GitHubApp, clock: ManualClock
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    client = app.installation(INSTALLATION)
    await client.get_pull_request(REPO, 1)
    await client.get_pull_request(REPO, 1)
    assert fake.recorded.tokens_issued == 1
    clock.advance(3600 - 6 * 60)  # token still valid for 6 minutes: keep it
    await client.get_pull_request(REPO, 1)
    assert fake.recorded.tokens_issued == 1
    clock.advance(2 * 60)  # 4 minutes left: inside the refresh margin
    await client.get_pull_request(REPO, 1)
    assert fake.recorded.tokens_issued == 2
    fake.assert_no_violations()


async def test_get_pull_request_parses_fields(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(
        REPO.full_name,
        7,
        SHA,
        author="mallory",
        draft=True,
        labels=["connector"],
        head_repo="mallory/connectors",
        head_ref="patch-1",
    )
    pull = await app.installation(INSTALLATION).get_pull_request(REPO, 7)
    assert (pull.number, pull.author, pull.draft, pull.head_sha) == (7, "mallory", True, SHA)
    assert pull.labels == ("connector",)
    assert pull.is_fork and pull.head_repo == "mallory/connectors"
    assert pull.base_repo == REPO.full_name and pull.default_branch == "main"


async def test_502_twice_then_success_is_retried(
    fake: FakeGitHub, app: GitHubApp, sleeps: RecordingSleep
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    client = app.installation(INSTALLATION)
    await client.get_pull_request(REPO, 1)  # token minted first, outside the fault
    fake.fail_next(2, 502, path="/pulls/1")
    pull = await client.get_pull_request(REPO, 1)
    assert pull.number == 1
    calls = fake.requests_for("pulls/get")
    assert [c.status for c in calls] == [200, 502, 502, 304]  # 304: the ETag cache answered
    assert app.stats.retries == 2 and len(sleeps.delays) == 2
    assert sleeps.delays[0] < sleeps.delays[1]  # exponential: 0.5-1 s then 1-2 s


async def test_secondary_rate_limit_honours_retry_after(
    fake: FakeGitHub, app: GitHubApp, sleeps: RecordingSleep
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    fake.rate_limit_next(1, retry_after=17, path="/pulls/1")
    await app.installation(INSTALLATION).get_pull_request(REPO, 1)
    assert sleeps.delays == [17.0]


async def test_primary_rate_limit_waits_until_reset(
    fake: FakeGitHub, app: GitHubApp, sleeps: RecordingSleep
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    fake.rate_limit_next(1, retry_after=None, reset_in=30, status=429, path="/pulls/1")
    await app.installation(INSTALLATION).get_pull_request(REPO, 1)
    assert len(sleeps.delays) == 1 and 30 < sleeps.delays[0] <= 31  # reset + 1 s


async def test_rate_limit_longer_than_budget_raises(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    fake.rate_limit_next(1, retry_after=3600, path="/pulls/1")
    with pytest.raises(RateLimited) as caught:
        await app.installation(INSTALLATION).get_pull_request(REPO, 1)
    assert caught.value.retry_after == 3600
    assert len(fake.requests_for("pulls/get")) == 1


async def test_5xx_forever_gives_up_after_bounded_attempts(
    fake: FakeGitHub, app: GitHubApp, sleeps: RecordingSleep
) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    client = app.installation(INSTALLATION)
    await client.get_pull_request(REPO, 1)
    fake.fail_next(100, 503, path="/pulls/1")
    with pytest.raises(GitHubUnavailable) as caught:
        await client.get_pull_request(REPO, 1)
    assert caught.value.status == 503
    assert len(fake.requests_for("pulls/get")) == 1 + 5
    assert len(sleeps.delays) == 4 and sum(sleeps.delays) <= app.transport.policy.max_total_wait


async def test_connection_refused_raises_unavailable(
    http_session: aiohttp.ClientSession,
    github_app_key: AppKeyPair,
    sleeps: RecordingSleep,
) -> None:
    app = GitHubApp(
        http_session,
        app_id=1,
        private_key=github_app_key.private_pem,
        base_url="http://127.0.0.1:9",
        sleep=sleeps,
    )
    with pytest.raises(GitHubUnavailable, match="ClientConnectorError"):
        await app.app_info()
    assert len(sleeps.delays) == 4


async def test_not_found_is_typed(fake: FakeGitHub, app: GitHubApp) -> None:
    with pytest.raises(NotFound):
        await app.installation(INSTALLATION).get_pull_request(REPO, 999)


async def test_pr_files_paginate_over_several_pages(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 3, SHA, files=[f"connectors/x/f{i}.py" for i in range(250)])
    listed = await app.installation(INSTALLATION).list_pull_request_files(REPO, 3)
    assert [f.filename for f in listed.files] == [f"connectors/x/f{i}.py" for i in range(250)]
    assert not listed.truncated
    pages = [r.query.get("page", "1") for r in fake.requests_for("pulls/list-files")]
    assert pages == ["1", "2", "3"]
    fake.assert_no_violations()


async def test_pr_files_stop_at_github_cap(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 4, SHA, files=[f"f{i}.py" for i in range(3100)])
    listed = await app.installation(INSTALLATION).list_pull_request_files(REPO, 4)
    assert len(listed.files) == 3000 and listed.truncated
    assert len(fake.requests_for("pulls/list-files")) == 30


async def test_open_prs_for_sha_finds_fork_pr(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 1, "b" * 40)
    fake.add_pull(REPO.full_name, 2, SHA, head_repo="mallory/connectors")
    fake.add_pull(REPO.full_name, 3, SHA, state="closed")
    found = await app.installation(INSTALLATION).open_pull_requests_for_sha(REPO, SHA)
    assert [p.number for p in found] == [2]


async def test_check_run_created_once_across_two_calls(fake: FakeGitHub, app: GitHubApp) -> None:
    client = app.installation(INSTALLATION)
    first = await client.ensure_check_run(REPO, name="security", head_sha=SHA, external_id="job-1")
    second = await client.ensure_check_run(REPO, name="security", head_sha=SHA, external_id="job-1")
    assert first.id == second.id and first.external_id == "job-1"
    assert len(fake.requests_for("checks/create")) == 1
    assert list(fake.recorded.check_runs) == [first.id]
    listing = fake.requests_for("checks/list-for-ref")[0]
    assert listing.query["check_name"] == "security" and listing.query["app_id"] == "1"
    fake.assert_no_violations()


async def test_annotations_are_batched_in_patches(fake: FakeGitHub, app: GitHubApp) -> None:
    client = app.installation(INSTALLATION)
    run = await client.ensure_check_run(REPO, name="static", head_sha=SHA, external_id="j")
    notes = tuple(
        Annotation(f"c/f{i}.py", i + 1, i + 1, "warning", f"problem {i}") for i in range(120)
    )
    output = CheckRunOutput("3 problems", "x" * 70_000, annotations=notes)
    done = await client.update_check_run(REPO, run.id, conclusion="failure", output=output)
    assert done.conclusion == "failure" and done.status == "completed"
    patches = fake.recorded.check_run_patches
    assert [len(p["output"]["annotations"]) for p in patches] == [50, 50, 20]
    assert patches[0]["conclusion"] == "failure" and "conclusion" not in patches[1]
    stored = fake.recorded.check_runs[run.id]
    assert [a["message"] for a in stored["annotations"]] == [f"problem {i}" for i in range(120)]
    assert len(stored["output"]["summary"]) == 65_535
    assert stored["output"]["summary"].endswith("… truncated")
    fake.assert_no_violations()


async def test_tarball_download_follows_redirect_without_token(
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    fake.set_tarball(REPO.full_name, SHA, {"connectors/acme/connector.yaml": b"name: acme\n"})
    dest = tmp_path / "src.tar.gz"
    size = await app.installation(INSTALLATION).download_tarball(REPO, SHA, dest)
    assert size == dest.stat().st_size > 0
    with tarfile.open(dest) as archive:
        names = archive.getnames()
    assert "acme-connectors-aaaaaaa/connectors/acme/connector.yaml" in names
    assert fake.recorded.downloads == [
        {"repo": REPO.full_name, "ref": SHA, "had_authorization": False}
    ]
    fake.assert_no_violations()


async def test_tarball_over_the_cap_is_refused(
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    fake.set_tarball(REPO.full_name, SHA, {}, extra=[huge_file("x/big.bin", 50_000_000)])
    dest = tmp_path / "src.tar.gz"
    with pytest.raises(ResponseTooLarge):
        await app.installation(INSTALLATION).download_tarball(REPO, SHA, dest, max_bytes=10_000)
    assert not dest.exists()


async def test_tarball_redirect_retried_on_502(
    fake: FakeGitHub, app: GitHubApp, tmp_path: Path, sleeps: RecordingSleep
) -> None:
    data = fake.set_tarball(REPO.full_name, SHA, {"a.py": b"print(1)\n"})
    fake.fail_next(1, 502, path="/_codeload/")
    dest = tmp_path / "src.tar.gz"
    await app.installation(INSTALLATION).download_tarball(REPO, SHA, dest)
    assert dest.read_bytes() == data and len(sleeps.delays) == 1


async def test_config_file_contents_and_absence(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.set_files(REPO.full_name, "main", {".github/connector-gate.yml": "fail_on: high\n"})
    client = app.installation(INSTALLATION)
    assert await client.get_file_contents(REPO, ".github/connector-gate.yml") == b"fail_on: high\n"
    assert await client.get_file_contents(REPO, ".github/connector-gate.yml", "other") is None
    assert await client.get_file_contents(REPO, ".github/missing.yml") is None
    fake.assert_no_violations()


async def test_reviews_team_membership_and_permission(
    fake: FakeGitHub, app: GitHubApp, clock: ManualClock
) -> None:
    fake.add_pull(REPO.full_name, 5, SHA)
    fake.add_review(REPO.full_name, 5, "alice", "APPROVED")
    fake.add_review(REPO.full_name, 5, "bob", "CHANGES_REQUESTED")
    fake.add_team("acme", "security", {"alice": "member"}, pending=["carol"])
    fake.repo(REPO.full_name).collaborators["alice"] = "write"
    client = app.installation(INSTALLATION)
    reviews = await client.list_reviews(REPO, 5)
    assert [(r.author, r.state, r.commit_id) for r in reviews] == [
        ("alice", "APPROVED", SHA),
        ("bob", "CHANGES_REQUESTED", SHA),
    ]
    assert await client.is_team_member("acme", "security", "alice")
    assert not await client.is_team_member("acme", "security", "carol")  # invitation pending
    assert not await client.is_team_member("acme", "security", "mallory")  # 404
    assert await client.is_team_member("acme", "security", "alice")
    assert len(fake.requests_for("teams/get-membership-for-user-in-org")) == 3  # cached
    clock.advance(61)
    await client.is_team_member("acme", "security", "alice")
    assert len(fake.requests_for("teams/get-membership-for-user-in-org")) == 4
    assert await client.collaborator_permission(REPO, "alice") == "write"
    assert await client.collaborator_permission(REPO, "mallory") == "none"
    fake.assert_no_violations()


async def test_review_with_inline_comments(fake: FakeGitHub, app: GitHubApp) -> None:
    patch = "@@ -0,0 +1,3 @@\n+import os\n+KEY = 'x'\n+print(KEY)"
    fake.add_pull(REPO.full_name, 6, SHA, files=[FakePullFile("c/settings.py", patch=patch)])
    client = app.installation(INSTALLATION)
    review_id = await client.create_review(
        REPO,
        6,
        body="2 findings",
        commit_id=SHA,
        comments=[
            ReviewComment("c/settings.py", 2, "secret here"),
            ReviewComment("c/settings.py", 3, "and here", start_line=2),
        ],
    )
    assert review_id > 0
    sent = fake.recorded.reviews[0]
    assert sent["event"] == "COMMENT" and sent["commit_id"] == SHA
    assert sent["comments"][0] == {
        "path": "c/settings.py",
        "line": 2,
        "side": "RIGHT",
        "body": "secret here",
    }
    assert sent["comments"][1]["start_line"] == 2 and sent["comments"][1]["start_side"] == "RIGHT"
    fake.assert_no_violations()


async def test_sticky_comment_is_edited_not_duplicated(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 8, SHA)
    # Someone quoting the marker must not have their comment rewritten by the bot.
    fake.add_issue_comment(REPO.full_name, 8, "mallory", "<!-- connector-gate:summary --> hi")
    client = app.installation(INSTALLATION)
    first = await client.upsert_sticky_comment(REPO, 8, "connector-gate:summary", "v1")
    second = await client.upsert_sticky_comment(REPO, 8, "connector-gate:summary", "v2")
    same = await client.upsert_sticky_comment(REPO, 8, "connector-gate:summary", "v2")
    assert first.id == second.id == same.id
    assert len(fake.recorded.comments_created) == 1
    assert [u["body"] for u in fake.recorded.comments_updated] == [
        "<!-- connector-gate:summary -->\nv2"
    ]
    await client.add_reaction(REPO, first.id, "eyes")
    assert fake.recorded.reactions == [{"comment_id": first.id, "content": "eyes"}]
    fake.assert_no_violations()


async def test_labels_and_status(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 9, SHA)
    client = app.installation(INSTALLATION)
    await client.add_labels(REPO, 9, ["needs-security-review"])
    await client.create_commit_status(REPO, SHA, state="pending", context="connector-gate")
    assert fake.repo(REPO.full_name).pulls[9].labels == ["needs-security-review"]
    assert fake.recorded.statuses[0]["state"] == "pending"
    fake.assert_no_violations()


async def test_token_never_in_repr_or_errors(fake: FakeGitHub, app: GitHubApp) -> None:
    client = app.installation(INSTALLATION)
    token = await app.tokens.token(INSTALLATION)
    cached = next(iter(app.tokens._cache.values()))
    texts = [repr(app), repr(client), repr(app.tokens), repr(app.jwt), repr(cached)]
    try:
        await client.get_pull_request(REPO, 404)
    except NotFound as exc:
        texts.append(str(exc))
    assert texts[-1].startswith("GET /repos/{owner}/{repo}/pulls/{pull_number} (404)")
    assert all(token not in text for text in texts)


def test_tarball_layout_helper_is_real_gzip() -> None:
    from tests.fakegithub import build_tarball

    data = build_tarball("o-r-1234567", {"a/b/c.txt": b"x"})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == [
            "o-r-1234567",
            "o-r-1234567/a",
            "o-r-1234567/a/b",
            "o-r-1234567/a/b/c.txt",
        ]


async def test_app_jwt_is_renewed_before_it_expires(
    fake: FakeGitHub, app: GitHubApp, clock: ManualClock
) -> None:
    await app.repo_installation_id(REPO)
    first = app.jwt.current()
    clock.advance(8 * 60 + 30)  # the first JWT would expire within a minute
    await app.repo_installation_id(REPO)
    assert app.jwt.current() != first
    fake.assert_no_violations()


async def test_revoked_token_is_replaced_once(fake: FakeGitHub, app: GitHubApp) -> None:
    fake.add_pull(REPO.full_name, 1, SHA)
    client = app.installation(INSTALLATION)
    await client.get_pull_request(REPO, 1)
    fake.tokens.clear()  # GitHub revoked every token
    await client.get_pull_request(REPO, 1)
    assert fake.recorded.tokens_issued == 2
