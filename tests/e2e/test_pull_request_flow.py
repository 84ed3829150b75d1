"""A connector PR from webhook to check runs, gate and approvals, through the real App."""

from __future__ import annotations

import json

from tests.e2e.conftest import REPO, Gate, add_pull, connector_files, pull_payload
from tests.fakegithub.tarballs import github_prefix, raw_file, symlink

CHECK_RUNS = {
    f"connector-gate/{n}"
    for n in ("manifest", "secrets", "dependencies", "static", "tests", "performance", "gate")
}
PLANTED = ("AKIAIOSFODNN7EXAMPLE", "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0")
CLEAN_SHA = "c" * 40
LEAKY_SHA = "d" * 40


def _everything_sent(gate: Gate) -> str:
    return json.dumps([r.json for r in gate.fake.requests if r.json is not None])


async def test_planted_problems_fail_their_checks_and_the_gate(gate: Gate) -> None:
    add_pull(gate.fake, 7, LEAKY_SHA, connector_files("leaky-notes"))
    assert await gate.deliver("pull_request", pull_payload("opened", 7, LEAKY_SHA)) == 202

    run = await gate.gate_done(LEAKY_SHA)

    runs = gate.runs(LEAKY_SHA)
    assert set(runs) == CHECK_RUNS
    assert all(len(v) == 1 for v in runs.values()), "exactly one check run per name"
    assert run["conclusion"] == "failure"
    for name in ("manifest", "secrets", "dependencies", "static"):
        assert runs[f"connector-gate/{name}"][0]["conclusion"] == "failure", name
    secrets = runs["connector-gate/secrets"][0]
    assert {(a["path"], a["start_line"]) for a in secrets["annotations"]} >= {
        ("connectors/leaky-notes/leaky_notes/settings.py", 6),
        ("connectors/leaky-notes/leaky_notes/settings.py", 7),
    }
    deps = runs["connector-gate/dependencies"][0]
    assert "PYSEC-2018-28" in deps["output"]["summary"]
    sent = _everything_sent(gate)
    for secret in PLANTED:
        assert secret not in sent
    # The sticky summary comment and inline review comments on diff lines.
    recorded = gate.fake.recorded
    await gate.wait_for(lambda: bool(recorded.reviews))
    assert any("connector-gate:summary" in c["body"] for c in recorded.comments_created)
    commented = {(c["path"], c["line"]) for r in recorded.reviews for c in r.get("comments", [])}
    assert ("connectors/leaky-notes/leaky_notes/client.py", 20) in commented


async def test_approvals_from_security_and_ops_pass_the_gate_until_a_new_push(gate: Gate) -> None:
    add_pull(gate.fake, 8, CLEAN_SHA, connector_files("acme-weather"), author="carol")
    await gate.deliver("pull_request", pull_payload("opened", 8, CLEAN_SHA))
    run = await gate.gate_done(CLEAN_SHA)
    assert run["conclusion"] == "action_required", run["output"]
    assert "ops" in run["output"]["summary"] and "security" in run["output"]["summary"]
    patches = gate.patches(run["id"])

    gate.fake.add_review(REPO, 8, "sam", "APPROVED", CLEAN_SHA)
    await gate.deliver("pull_request_review", _review_payload(8, "sam"))
    run = await gate.gate_done(CLEAN_SHA, patches + 1)
    assert run["conclusion"] == "action_required"
    assert "waiting on 1 approval" in json.dumps(run["output"])

    gate.fake.add_review(REPO, 8, "olga", "APPROVED", CLEAN_SHA)
    await gate.deliver("pull_request_review", _review_payload(8, "olga"))
    run = await gate.gate_done(CLEAN_SHA, patches + 2)
    assert run["conclusion"] == "success", run["output"]

    new_sha = "e" * 40
    gate.fake.set_tarball(REPO, new_sha, connector_files("acme-weather"))
    gate.fake.repo(REPO).pulls[8].head_sha = new_sha
    await gate.deliver("pull_request", pull_payload("synchronize", 8, new_sha))
    run = await gate.gate_done(new_sha)
    assert run["conclusion"] == "action_required", "a push invalidates the approvals"


async def test_replayed_delivery_and_injected_502s_leave_one_run_per_name(gate: Gate) -> None:
    add_pull(gate.fake, 9, CLEAN_SHA, connector_files("acme-weather"))
    gate.fake.fail_next(2, 502, method="POST")
    payload = pull_payload("opened", 9, CLEAN_SHA)
    assert await gate.deliver("pull_request", payload, delivery="same-delivery") == 202
    assert await gate.deliver("pull_request", payload, delivery="same-delivery") == 200
    await gate.gate_done(CLEAN_SHA)
    runs = gate.runs(CLEAN_SHA)
    assert set(runs) == CHECK_RUNS
    assert all(len(v) == 1 for v in runs.values()), {k: len(v) for k, v in runs.items()}


async def test_forged_signature_is_refused_and_nothing_runs(gate: Gate) -> None:
    body = json.dumps(pull_payload("opened", 10, CLEAN_SHA)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "forged",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
    }
    async with gate.session.post(f"{gate.url}/webhook", data=body, headers=headers) as resp:
        assert resp.status == 401
    assert not gate.fake.recorded.check_runs


async def test_hostile_tarball_members_are_refused_and_reported(gate: Gate) -> None:
    files = connector_files("acme-weather")
    top = github_prefix("acme", "connectors", LEAKY_SHA)
    gate.fake.set_tarball(
        REPO,
        LEAKY_SHA,
        files,
        extra=[
            symlink(f"{top}/connectors/acme-weather/passwd", "/etc/passwd"),
            raw_file(f"{top}/connectors/acme-weather/../../../escaped.txt"),
        ],
    )
    gate.fake.add_pull(REPO, 11, LEAKY_SHA, files=list(files))
    await gate.deliver("pull_request", pull_payload("opened", 11, LEAKY_SHA))
    await gate.gate_done(LEAKY_SHA)
    manifest = gate.runs(LEAKY_SHA)["connector-gate/manifest"][0]
    assert manifest["conclusion"] == "failure"
    assert "archive entry refused" in json.dumps(manifest)
    assert "link to an absolute path" in json.dumps(manifest)


async def test_pull_request_without_connector_changes_passes_and_says_so(gate: Gate) -> None:
    gate.fake.set_tarball(REPO, CLEAN_SHA, {"README.md": b"hello\n"})
    gate.fake.add_pull(REPO, 12, CLEAN_SHA, files=["README.md"])
    await gate.deliver("pull_request", pull_payload("opened", 12, CLEAN_SHA))
    run = await gate.gate_done(CLEAN_SHA)
    assert run["conclusion"] == "success"
    assert "No connector changed" in run["output"]["title"]
    runs = gate.runs(CLEAN_SHA)
    assert {runs[f"connector-gate/{n}"][0]["conclusion"] for n in ("secrets", "tests")} == {
        "skipped"
    }


def _review_payload(number: int, user: str) -> dict[str, object]:
    from tests.e2e.conftest import FIXTURES, INSTALLATION

    payload: dict[str, object] = json.loads(
        (FIXTURES / "pull_request_review" / "submitted.json").read_text()
    )
    payload["installation"] = {"id": INSTALLATION, "node_id": "x"}
    repository = payload["repository"]
    assert isinstance(repository, dict)
    repository["full_name"] = REPO
    pull = payload["pull_request"]
    assert isinstance(pull, dict)
    pull["number"] = number
    sender = payload["sender"]
    assert isinstance(sender, dict)
    sender["login"] = user
    return payload


async def test_pull_request_beyond_githubs_3000_files_fails_closed(gate: Gate) -> None:
    files = connector_files("acme-weather")
    gate.fake.set_tarball(REPO, CLEAN_SHA, files)
    listed = [*files, *(f"docs/page-{i}.md" for i in range(3001))]
    gate.fake.add_pull(REPO, 13, CLEAN_SHA, files=listed)
    await gate.deliver("pull_request", pull_payload("opened", 13, CLEAN_SHA))
    run = await gate.gate_done(CLEAN_SHA)
    assert run["conclusion"] == "failure"
    assert "3000" in json.dumps(run["output"])


async def test_a_review_that_breaks_shows_on_the_gate_and_is_retried(gate: Gate) -> None:
    add_pull(gate.fake, 14, CLEAN_SHA, connector_files("acme-weather"))
    # The tarball is gone (404 is not retried by the client): the review cannot finish.
    gate.fake.fail_next(1, 404, method="GET", path="/tarball/")
    await gate.deliver("pull_request", pull_payload("opened", 14, CLEAN_SHA))

    def reported() -> bool:
        runs = gate.runs(CLEAN_SHA).get("connector-gate/gate", [])
        return bool(runs) and "could not finish" in json.dumps(runs[0]["output"])

    await gate.wait_for(reported, timeout_s=60)
    gate_run = gate.runs(CLEAN_SHA)["connector-gate/gate"][0]
    assert gate_run["conclusion"] == "failure"
    assert "NotFound" in gate_run["output"]["summary"]
