"""Rendering of the gate's check run and of the sticky summary comment."""

from __future__ import annotations

from bot.gate.evaluate import evaluate
from bot.gate.model import CheckState, RunStatus, Waiver
from bot.gate.proposal import propose
from bot.render.gate import render_gate_output, render_proposal, render_summary_comment
from bot.render.markers import SUMMARY_MARKER, is_summary_comment
from checks.errors import ConfigError
from checks.rules_model import ApprovalRule
from tests.gate.factories import (
    HEAD,
    OLD,
    OPS,
    SECURITY,
    TODAY,
    approve,
    completed,
    finding,
    gate_input,
    rules,
)

LEAK = finding()


def test_gate_output_shows_the_explanation_tree() -> None:
    result = evaluate(
        gate_input(rules=rules(SECURITY, OPS), reviews=(approve("sam"), approve("olga", OLD)))
    )
    output = render_gate_output(result)
    assert output.title.startswith("waiting on 1 approval from @acme/ops")
    assert "- ⏳ **connector-gate**: waiting on 1 approval from @\u200bacme/ops" in output.summary
    assert "  - ✅ **checks**: 3 checks passed" in output.summary
    assert "    - ✅ **approval rule security**: approved by @\u200bsam (1 of 1)" in output.summary
    assert "approval by @\u200bolga is for an older commit (bbbbbbb)" in output.summary
    assert "**Next steps**" in output.summary
    assert "### Risk score: 1" in output.text


def test_summary_comment_is_a_checklist_with_its_marker() -> None:
    waiver = Waiver(LEAK.finding_id, "fixture", "sam", TODAY)
    checks = (completed("secrets", LEAK), CheckState("tests", RunStatus.IN_PROGRESS))
    result = evaluate(
        gate_input(
            rules=rules(SECURITY, OPS), checks=checks, waivers=(waiver,), reviews=(approve("olga"),)
        )
    )
    body = render_summary_comment(result, HEAD)
    assert body.startswith(SUMMARY_MARKER + "\n")
    assert is_summary_comment(body)
    assert "## ⏳ connector-gate: tests check running" in body
    assert (
        "- [x] ✅ **secrets**: secrets check passed: every blocking finding waived (1 waived)"
        in body
    )
    assert "- [ ] ⏳ **tests**: tests check running" in body
    assert "- [ ] ⏳ **security** (@\u200bacme/security): waiting on 1 approval" in body
    assert "- [x] ✅ **ops** (@\u200bacme/ops): approved by @\u200bolga (1 of 1)" in body
    assert f"| `{LEAK.finding_id}` | secrets | sam: fixture (until 2025-03-10) |" in body
    assert "1. Wait for the tests check to finish." in body
    assert "Commit `aaaaaaa`" in body
    assert "/gate waive <finding-id> <reason>" in body


def test_summary_comment_for_failure_says_how_to_waive() -> None:
    result = evaluate(gate_input(checks=(completed("secrets", LEAK),), reviews=(approve("sam"),)))
    body = render_summary_comment(result, HEAD)
    assert "## ❌ connector-gate: secrets check failing: 1 blocking finding (1 high)" in body
    assert "- [ ] ❌ **secrets**" in body
    assert "`/gate waive <finding-id> <reason>`" in body
    assert "### Waivers\n\nNone." in body


def test_summary_comment_when_passed() -> None:
    result = evaluate(gate_input(reviews=(approve("sam"),)))
    body = render_summary_comment(result, HEAD)
    assert "## ✅ connector-gate: ready to merge" in body
    assert "Nothing: the gate has passed." in body


def test_summary_comment_when_nothing_reported_and_no_approvals() -> None:
    result = evaluate(gate_input(rules=rules(), checks=()))
    body = render_summary_comment(result, HEAD)
    assert "- [ ] ❌ no check has reported yet" in body
    assert "No approval required." in body
    assert "## ❌ connector-gate: nothing was evaluated" in body


def test_invalid_rules_render() -> None:
    result = evaluate(gate_input(rules=ConfigError("<b>bad</b>", file="x.yml", line=2)))
    output = render_gate_output(result)
    assert "rules are invalid: x.yml:2: &lt;b&gt;bad&lt;/b&gt;" in output.summary
    assert "<b>" not in output.summary
    assert output.title == "rules are invalid: x.yml:2: <b>bad</b>"  # titles are plain text


def test_rule_names_are_shown_with_org_teams_and_users() -> None:
    rule = ApprovalRule(name="data", teams=("privacy",), users=("dpo",))
    result = evaluate(gate_input(rules=rules(rule)))
    assert (
        "waiting on 1 approval from @\u200bacme/privacy or @\u200bdpo"
        in render_gate_output(result).summary
    )


def test_every_blocking_finding_is_listed_with_its_waive_line() -> None:
    result = evaluate(gate_input(checks=(completed("secrets", LEAK),), reviews=(approve("sam"),)))
    line = f"`/gate waive {LEAK.finding_id} <reason>`"
    assert line in render_gate_output(result).summary
    assert line in render_summary_comment(result, HEAD)


def test_waived_findings_are_not_listed_as_blocking() -> None:
    waiver = Waiver(LEAK.finding_id, "fixture", "sam", TODAY)
    checks = (completed("secrets", LEAK),)
    result = evaluate(gate_input(checks=checks, waivers=(waiver,), reviews=(approve("sam"),)))
    assert "/gate waive" not in render_gate_output(result).summary
    assert "Blocking findings" not in render_summary_comment(result, HEAD)


def test_proposed_rules_are_reported_not_applied() -> None:
    current = gate_input(rules=rules(SECURITY, OPS), reviews=(approve("sam"),))
    result = evaluate(current)
    proposal = propose(current, rules(SECURITY), "acme/connectors@aaaaaaa:.github/x.yml")
    output = render_gate_output(result, proposal)
    assert output.title.startswith("waiting on 1 approval from @acme/ops")
    assert "approval rule **ops**: 1 required now, not required with the proposed rules" in (
        output.summary
    )
    assert "would go from **pending** to **pass**" in render_summary_comment(result, HEAD, proposal)
    invalid = propose(current, ConfigError("bad", file="f.yml", line=3, key="approvals"), "f")
    assert "The proposed rules are invalid: f.yml:3: approvals: bad" in render_proposal(invalid)
