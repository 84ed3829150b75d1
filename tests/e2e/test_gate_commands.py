"""`/gate` commands in PR comments, through the real App against the fake GitHub."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from bot.review import gate_step
from bot.storage import Storage
from tests.e2e.conftest import (
    FIXTURES,
    INSTALLATION,
    REPO,
    Gate,
    add_pull,
    connector_files,
    pull_payload,
)

LEAKY_SHA = "d" * 40
CLEAN_SHA = "c" * 40
SECRETS_FILE = "connectors/leaky-notes/leaky_notes/settings.py"


def comment_payload(
    number: int, comment_id: int, user: str, body: str, *, user_type: str = "User"
) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "issue_comment" / "created.json").read_text())
    payload["installation"] = {"id": INSTALLATION, "node_id": "x"}
    payload["repository"]["full_name"] = REPO
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{REPO}/pulls/{number}"
    }
    payload["comment"].update(id=comment_id, body=body)
    payload["comment"]["user"].update(login=user, type=user_type)
    payload["sender"].update(login=user, type=user_type)
    return payload


async def command(gate: Gate, number: int, user: str, body: str, **kw: Any) -> int:
    """Post `body` as `user` on the PR and deliver the webhook; returns the comment id."""
    comment_id = gate.fake.add_issue_comment(REPO, number, user, body)
    await gate.deliver("issue_comment", comment_payload(number, comment_id, user, body, **kw))
    return comment_id


def storage(gate: Gate) -> Storage:
    assert gate.storage is not None
    return gate.storage


async def settled(gate: Gate) -> None:
    """Every delivery handled (no sleeping on a guess)."""
    deadline = asyncio.get_running_loop().time() + 240
    while await storage(gate).queue_depth():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the queue"
        await asyncio.sleep(0.1)


async def answered(gate: Gate, comment_id: int) -> str:
    """The reaction the App left on a comment, once every delivery is handled."""
    await settled(gate)
    found = [r["content"] for r in gate.fake.recorded.reactions if r["comment_id"] == comment_id]
    assert len(set(found)) == 1, found
    return found[0]


def replies(gate: Gate) -> list[str]:
    return [
        c["body"] for c in gate.fake.recorded.comments_created if "connector-gate:" not in c["body"]
    ]


def summary_comment(gate: Gate, number: int) -> str:
    bodies = [
        c["body"]
        for c in gate.fake.repo(REPO).comments.get(number, [])
        if "<!-- connector-gate:summary -->" in c["body"]
    ]
    assert len(bodies) == 1, "one sticky summary comment"
    return str(bodies[0])


def blocking_ids(gate: Gate, sha: str, check: str) -> list[str]:
    run = gate.runs(sha)[f"connector-gate/{check}"][0]
    titles = [a["title"] for a in run["annotations"] if a["annotation_level"] == "failure"]
    return sorted({t.split()[0] for t in titles})


def gate_text(gate: Gate, sha: str) -> str:
    return json.dumps(gate.runs(sha)["connector-gate/gate"][0]["output"], ensure_ascii=False)


async def reviewed_leaky_pull(gate: Gate, number: int) -> list[str]:
    add_pull(gate.fake, number, LEAKY_SHA, connector_files("leaky-notes"), author="carol")
    await gate.deliver("pull_request", pull_payload("opened", number, LEAKY_SHA))
    await gate.gate_done(LEAKY_SHA)
    await settled(gate)
    ids = blocking_ids(gate, LEAKY_SHA, "secrets")
    assert len(ids) >= 2 and all(i.startswith("sec-") for i in ids), ids
    return ids


async def test_waivers_refused_granted_capped_expired_and_withdrawn(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, *others = await reviewed_leaky_pull(gate, 20)
    total = 2 + len(others)
    today = gate_step.utc_today()
    # Every output listing a blocking finding gives the exact line that waives it.
    for text in (gate_text(gate, LEAKY_SHA), summary_comment(gate, 20)):
        assert f"/gate waive {first} <reason>" in text
        assert f"/gate waive {second} <reason>" in text
    secrets_run = gate.runs(LEAKY_SHA)["connector-gate/secrets"][0]
    assert f"/gate waive {first} <reason>" in secrets_run["output"]["summary"]

    # Someone outside the security team is refused, told who may, and nothing is stored.
    refused = await command(gate, 20, "mallory", f"/gate waive {first} not real")
    assert await answered(gate, refused) == "-1"
    assert "Only members of the `security` approvers (@\u200bacme/security)" in replies(gate)[-1]
    assert await storage(gate).active_waivers(REPO, 20) == []

    # A security member waives it: stored, audited, shown as waived, no longer counted.
    patches = gate.patches(gate.runs(LEAKY_SHA)["connector-gate/gate"][0]["id"])
    granted = await command(gate, 20, "sam", f'/gate waive {first} "test fixture, not a real key"')
    assert await answered(gate, granted) == "+1"
    until = today + dt.timedelta(days=30)
    assert f"Waived `{first}` until {until.isoformat()}." in replies(gate)[-1]
    [waiver] = await storage(gate).active_waivers(REPO, 20)
    assert (waiver.finding_id, waiver.by, waiver.reason) == (
        first,
        "sam",
        "test fixture, not a real key",
    )
    audit = [r.entry for r in await storage(gate).audit_entries(REPO, 20)]
    waive_audit = [e for e in audit if e.kind == "command.waive"]
    assert [e.detail["decision"] for e in waive_audit] == ["refused", "allowed"]
    assert waive_audit[-1].actor == "sam" and waive_audit[-1].detail["finding_id"] == first
    assert gate.patches(gate.runs(LEAKY_SHA)["connector-gate/gate"][0]["id"]) > patches
    note = f"sam: test fixture, not a real key (until {until.isoformat()})"
    assert note in gate_text(gate, LEAKY_SHA)
    assert note in summary_comment(gate, 20)
    secrets_run = gate.runs(LEAKY_SHA)["connector-gate/secrets"][0]
    assert note in secrets_run["output"]["summary"]
    assert f"secrets check failing: {total - 1} blocking finding" in gate_text(gate, LEAKY_SHA)
    assert "1 waived" in gate_text(gate, LEAKY_SHA)
    assert f"/gate waive {first} <reason>" not in gate_text(gate, LEAKY_SHA)

    # A date beyond the rules' maximum is cut back to it, and the reply says so.
    capped = await command(gate, 20, "sam", f"/gate waive {second} fixture --until 2999-01-01")
    assert await answered(gate, capped) == "+1"
    latest = (today + dt.timedelta(days=90)).isoformat()
    assert f"Waived `{second}` until {latest} (capped at 90 days)." in replies(gate)[-1]
    if others:  # several commands in one comment, each answered
        rest = await command(gate, 20, "sam", "\n".join(f"/gate waive {i} fixture" for i in others))
        assert await answered(gate, rest) == "+1"
    assert f"secrets check passed: every blocking finding waived ({total} waived)" in gate_text(
        gate, LEAKY_SHA
    )

    # 31 days later the first waiver has expired: the finding blocks again.
    later = today + dt.timedelta(days=31)
    monkeypatch.setattr(gate_step, "utc_today", lambda: later)
    status = await command(gate, 20, "mallory", "/gate status")
    assert await answered(gate, status) == "+1"
    expired = 1 + len(others)  # the others were waived for the default 30 days too
    assert f"secrets check failing: {expired} blocking finding" in gate_text(gate, LEAKY_SHA)
    assert f"/gate waive {first} <reason>" in summary_comment(gate, 20)

    # Withdrawing the other waiver brings its finding back too.
    withdrawn = await command(gate, 20, "sam", f"/gate unwaive {second}")
    assert await answered(gate, withdrawn) == "+1"
    assert await storage(gate).active_waivers(REPO, 20) != []  # the expired row is history
    assert f"secrets check failing: {total} blocking findings (" in gate_text(gate, LEAKY_SHA)
    secrets_run = gate.runs(LEAKY_SHA)["connector-gate/secrets"][0]
    assert secrets_run["conclusion"] == "failure"


async def test_rerun_one_check_help_status_and_what_is_ignored(gate: Gate) -> None:
    add_pull(gate.fake, 21, CLEAN_SHA, connector_files("acme-weather"), author="carol")
    gate.fake.repo(REPO).collaborators["wendy"] = "write"
    await gate.deliver("pull_request", pull_payload("opened", 21, CLEAN_SHA))
    await gate.gate_done(CLEAN_SHA)
    await settled(gate)
    runs = {name: found[0] for name, found in gate.runs(CLEAN_SHA).items()}
    before = {name: gate.patches(run["id"]) for name, run in runs.items()}

    for body in ("/gate rerun tests", "/gate rerun connector-gate/tests"):
        rerun = await command(gate, 21, "wendy", body)
        assert await answered(gate, rerun) == "+1"
        assert replies(gate)[-1] == "Rerunning `tests`."
    after = {name: gate.patches(run["id"]) for name, run in runs.items()}
    assert after["connector-gate/tests"] == before["connector-gate/tests"] + 2
    for name in ("manifest", "secrets", "dependencies", "static", "performance"):
        run = f"connector-gate/{name}"
        assert after[run] == before[run], f"{name} was not re-run"
        assert gate.runs(CLEAN_SHA)[run][0]["conclusion"] == runs[run]["conclusion"]
    assert gate.runs(CLEAN_SHA)["connector-gate/tests"][0]["conclusion"] == "success"

    refused = await command(gate, 21, "mallory", "/gate rerun")
    assert await answered(gate, refused) == "-1"
    assert "Only people with write access and the author may rerun" in replies(gate)[-1]

    helped = await command(gate, 21, "mallory", "/gate help")
    assert await answered(gate, helped) == "+1"
    assert "**connector-gate commands**" in replies(gate)[-1]

    evaluated = len(
        [r for r in await storage(gate).audit_entries(REPO, 21) if r.entry.kind == "gate.evaluated"]
    )
    status = await command(gate, 21, "mallory", "/gate status")
    assert await answered(gate, status) == "+1"
    audit = await storage(gate).audit_entries(REPO, 21)
    assert len([r for r in audit if r.entry.kind == "gate.evaluated"]) == evaluated + 1
    assert len(summary_comment(gate, 21)) > 0

    # Bots and edited comments are never answered.
    replied, reacted = len(replies(gate)), len(gate.fake.recorded.reactions)
    await command(gate, 21, "other-bot[bot]", "/gate help", user_type="Bot")
    edited_id = gate.fake.add_issue_comment(REPO, 21, "wendy", "/gate help")
    edited = comment_payload(21, edited_id, "wendy", "/gate help")
    edited["action"] = "edited"
    edited["changes"] = {"body": {"from": "hello"}}
    assert await gate.deliver("issue_comment", edited) == 200  # ignored at the door
    await settled(gate)
    assert (len(replies(gate)), len(gate.fake.recorded.reactions)) == (replied, reacted)
