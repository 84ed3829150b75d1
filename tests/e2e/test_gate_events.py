"""Gate events through the real App: membership, merge queue, rules changes, no duplicates."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema

from tests.e2e.conftest import (
    FIXTURES,
    INSTALLATION,
    REPO,
    RULES,
    Gate,
    add_pull,
    connector_files,
    pull_payload,
)
from tests.e2e.test_gate_commands import command, settled, storage, summary_comment
from tests.e2e.test_pull_request_flow import _review_payload

SCHEMA = json.loads((FIXTURES / "schema.json").read_text())
RULES_FILE = ".github/connector-gate.yml"
CLEAN_SHA = "c" * 40
LEAKY_SHA = "d" * 40
TOKEN_MINTING = "apps/create-installation-access-token"


def valid(payload: dict[str, Any], definition: str) -> dict[str, Any]:
    """`payload`, once it validates against the webhook schema's `definition`."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": SCHEMA["definitions"]}
    jsonschema.Draft7Validator(schema).validate(payload)
    return payload


def _base() -> dict[str, Any]:
    return json.loads((FIXTURES / "pull_request" / "opened.json").read_text())


def _user(login: str) -> dict[str, Any]:
    user: dict[str, Any] = copy.deepcopy(_base()["sender"])
    user.update(login=login, type="User")
    return user


def _organization() -> dict[str, Any]:
    api = "https://api.github.com/orgs/acme"
    return {
        "login": "acme",
        "id": 4242,
        "node_id": "O_acme",
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": "https://avatars.githubusercontent.com/u/4242?v=4",
        "description": None,
    }


def membership_payload(action: str, team: str, member: str) -> dict[str, Any]:
    api = f"https://api.github.com/organizations/4242/team/{len(team)}"
    payload = {
        "action": action,
        "scope": "team",
        "member": _user(member),
        "sender": _user("owner-olivia"),
        "team": {
            "name": team,
            "id": 7000 + len(team),
            "node_id": f"T_{team}",
            "slug": team,
            "description": None,
            "privacy": "closed",
            "url": api,
            "html_url": f"https://github.com/orgs/acme/teams/{team}",
            "members_url": f"{api}/members{{/member}}",
            "repositories_url": f"{api}/repos",
            "permission": "pull",
        },
        "organization": _organization(),
        "installation": {"id": INSTALLATION, "node_id": "x"},
    }
    return valid(payload, f"membership${action}")


def merge_group_payload(number: int, head_sha: str) -> dict[str, Any]:
    repository = pull_payload("opened", number, head_sha)["repository"]
    group_sha = "f" * 40
    payload = {
        "action": "checks_requested",
        "merge_group": {
            "head_sha": group_sha,
            "head_ref": f"refs/heads/gh-readonly-queue/main/pr-{number}-{head_sha}",
            "base_ref": "refs/heads/main",
            "base_sha": "b" * 40,
            "head_commit": {
                "id": group_sha,
                "tree_id": "e" * 40,
                "message": f"Merge pull request #{number}",
                "timestamp": "2025-03-01T12:00:00Z",
                "author": {"name": "Carol", "email": "carol@example.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
        },
        "repository": repository,
        "sender": _user("carol"),
        "installation": {"id": INSTALLATION, "node_id": "x"},
        "organization": _organization(),
    }
    return valid(payload, "merge_group$checks_requested")


def gate_run(gate: Gate, sha: str) -> dict[str, Any]:
    return gate.runs(sha)["connector-gate/gate"][0]


async def opened(gate: Gate, number: int, sha: str, connector: str, **extra: bytes) -> None:
    files = connector_files(connector) | {path: data for path, data in extra.items()}
    add_pull(gate.fake, number, sha, files, author="carol")
    await gate.deliver("pull_request", pull_payload("opened", number, sha))
    await gate.gate_done(sha)
    await settled(gate)


async def test_membership_change_reevaluates_open_pulls_of_the_installation(gate: Gate) -> None:
    await opened(gate, 30, CLEAN_SHA, "acme-weather")
    gate.fake.add_review(REPO, 30, "sam", "APPROVED", CLEAN_SHA)
    gate.fake.add_review(REPO, 30, "nina", "APPROVED", CLEAN_SHA)
    await gate.deliver("pull_request_review", _review_payload(30, "nina"))
    await settled(gate)
    assert gate_run(gate, CLEAN_SHA)["conclusion"] == "action_required"
    evaluated = await _evaluations(gate, 30)

    # A team no approval rule uses: nothing to do.
    await gate.deliver("membership", membership_payload("added", "docs", "nina"))
    await settled(gate)
    assert await _evaluations(gate, 30) == evaluated

    # nina joins ops (her membership was cached as "no" a moment ago).
    gate.fake.add_team("acme", "ops", {"olga": "member", "nina": "member"})
    await gate.deliver("membership", membership_payload("added", "ops", "nina"))
    await settled(gate)
    assert await _evaluations(gate, 30) == evaluated + 1
    run = gate_run(gate, CLEAN_SHA)
    assert run["conclusion"] == "success", run["output"]

    gate.fake.add_team("acme", "ops", {"olga": "member"})
    await gate.deliver("membership", membership_payload("removed", "ops", "nina"))
    await settled(gate)
    assert gate_run(gate, CLEAN_SHA)["conclusion"] == "action_required"


async def _evaluations(gate: Gate, number: int) -> int:
    audit = await storage(gate).audit_entries(REPO, number)
    return sum(1 for r in audit if r.entry.kind == "gate.evaluated")


async def test_merge_group_gate_reflects_each_queued_pull(gate: Gate) -> None:
    await opened(gate, 31, CLEAN_SHA, "acme-weather")
    for user in ("sam", "olga"):
        gate.fake.add_review(REPO, 31, user, "APPROVED", CLEAN_SHA)
    await gate.deliver("pull_request_review", _review_payload(31, "olga"))
    await settled(gate)
    assert gate_run(gate, CLEAN_SHA)["conclusion"] == "success"

    await gate.deliver("merge_group", merge_group_payload(31, CLEAN_SHA))
    await settled(gate)
    group = gate_run(gate, "f" * 40)
    assert group["conclusion"] == "success", group["output"]
    assert "#31" in group["output"]["title"]

    # Not approved: the queue is not a way around the gate.
    await opened(gate, 32, LEAKY_SHA, "acme-weather")
    await gate.deliver("merge_group", merge_group_payload(32, LEAKY_SHA))
    await settled(gate)
    runs = gate.runs("f" * 40)["connector-gate/gate"]
    assert len(runs) == 1, "one gate run per merge group head, updated"
    assert runs[0]["conclusion"] == "failure"
    assert "#32" in runs[0]["output"]["title"]
    assert "waiting on" in runs[0]["output"]["summary"]


WEAKER_RULES = RULES.replace("  - name: ops\n    teams: [ops]\n", "")
BROKEN_RULES = RULES.replace("performance:\n", "performance:\n  speed: fast\n")


async def test_pull_request_changing_the_rules_is_still_gated_by_the_default_branch(
    gate: Gate,
) -> None:
    assert WEAKER_RULES != RULES
    gate.fake.set_files(REPO, CLEAN_SHA, {RULES_FILE: WEAKER_RULES})
    await opened(gate, 33, CLEAN_SHA, "acme-weather", **{RULES_FILE: WEAKER_RULES.encode()})
    gate.fake.add_review(REPO, 33, "sam", "APPROVED", CLEAN_SHA)
    await gate.deliver("pull_request_review", _review_payload(33, "sam"))
    await settled(gate)

    run = gate_run(gate, CLEAN_SHA)
    output = json.dumps(run["output"], ensure_ascii=False)
    assert run["conclusion"] == "action_required", "the ops approval is still required"
    assert "waiting on 1 approval from @\u200bacme/ops" in output
    assert "The proposed rules are valid." in output
    assert "approval rule **ops**: 1 required now, not required with the proposed rules" in output
    assert "The gate's verdict would go from **pending** to **pass**." in output
    assert "approval rule **ops**" in summary_comment(gate, 33)

    gate.fake.set_files(REPO, LEAKY_SHA, {RULES_FILE: BROKEN_RULES})
    await opened(gate, 34, LEAKY_SHA, "acme-weather", **{RULES_FILE: BROKEN_RULES.encode()})
    output = json.dumps(gate_run(gate, LEAKY_SHA)["output"], ensure_ascii=False)
    line = BROKEN_RULES.splitlines().index("  speed: fast") + 1
    assert "The proposed rules are invalid:" in output
    assert f"{RULES_FILE}:{line}: performance.speed" in output, output

    # Only the rules change: no connector to gate, but the new rules are still checked.
    only_rules = "a" * 40
    gate.fake.set_files(REPO, only_rules, {RULES_FILE: WEAKER_RULES})
    gate.fake.set_tarball(REPO, only_rules, {RULES_FILE: WEAKER_RULES.encode()})
    gate.fake.add_pull(REPO, 37, only_rules, files=[RULES_FILE])
    await gate.deliver("pull_request", pull_payload("opened", 37, only_rules))
    run = await gate.gate_done(only_rules)
    assert run["conclusion"] == "success"
    assert "The proposed rules are valid." in run["output"]["summary"]
    assert "Sections that differ: `approvals`." in run["output"]["summary"]


async def test_invalid_rules_on_the_default_branch_fail_closed_naming_file_line_key(
    gate: Gate,
) -> None:
    gate.fake.set_files(REPO, "main", {RULES_FILE: BROKEN_RULES})
    await opened(gate, 35, CLEAN_SHA, "acme-weather")
    run = gate_run(gate, CLEAN_SHA)
    line = BROKEN_RULES.splitlines().index("  speed: fast") + 1
    assert run["conclusion"] == "failure"
    where = f"{REPO}@main:{RULES_FILE}:{line}: performance.speed"
    assert where in run["output"]["title"] + run["output"]["summary"], run["output"]
    assert where.replace("@", "@\u200b") in summary_comment(gate, 35)  # mentions broken


def _content_writes(gate: Gate, since: int) -> list[str]:
    return [
        f"{r.method} {r.operation}"
        for r in gate.fake.requests[since:]
        if r.method in ("POST", "PATCH") and r.operation != TOKEN_MINTING
    ]


async def test_rerun_and_redelivered_synchronize_post_nothing_twice(gate: Gate) -> None:
    start = len(gate.fake.requests)
    await opened(gate, 36, LEAKY_SHA, "leaky-notes")
    first = _content_writes(gate, start)
    recorded = gate.fake.recorded
    annotations = {n: len(r[0]["annotations"]) for n, r in gate.runs(LEAKY_SHA).items()}
    posted = [c["body"] for r in recorded.reviews for c in r.get("comments", [])]
    assert posted, "the first review comments on diff lines"

    mark = len(gate.fake.requests)
    rerun = await command(gate, 36, "carol", "/gate rerun")  # the author may rerun
    await settled(gate)
    after_rerun = _content_writes(gate, mark)

    mark = len(gate.fake.requests)
    payload = pull_payload("synchronize", 36, LEAKY_SHA)
    assert await gate.deliver("pull_request", payload, delivery="redelivered-1") == 202
    await settled(gate)
    after_sync = _content_writes(gate, mark)

    again = [c["body"] for r in recorded.reviews for c in r.get("comments", [])]
    assert again == posted, "no inline comment posted twice"
    assert len(recorded.reviews) == 1
    again_annotations = {n: len(r[0]["annotations"]) for n, r in gate.runs(LEAKY_SHA).items()}
    assert again_annotations == annotations, "GitHub appends annotations: none sent twice"
    summaries = [c for c in recorded.comments_created if "connector-gate:summary" in c["body"]]
    assert len(summaries) == 1, "the sticky summary is edited in place"
    summary_comment(gate, 36)
    assert any(r["comment_id"] == rerun for r in recorded.reactions)
    print(f"\ncontent writes: opened={len(first)} rerun={len(after_rerun)} sync={len(after_sync)}")
    print("synchronize:", after_sync)
    assert len(after_sync) <= 9, after_sync  # gate in progress, 6 check runs, gate, no comment
