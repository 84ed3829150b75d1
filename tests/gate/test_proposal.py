"""A pull request's own rules: validated and compared, never applied."""

from __future__ import annotations

import dataclasses

import pytest

from bot.gate.model import Verdict
from bot.gate.proposal import ApprovalChange, approval_changes, changed_sections, propose
from checks.errors import ConfigError
from checks.rules_model import WaiverRules
from tests.gate.factories import OPS, SECURITY, approve, gate_input, rules

FILE = "acme/connectors@aaaaaaa:.github/connector-gate.yml"


def test_dropping_a_rule_shows_fewer_approvals_and_a_new_verdict() -> None:
    current = gate_input(rules=rules(SECURITY, OPS), reviews=(approve("sam"),))
    proposal = propose(current, rules(SECURITY), FILE)
    assert proposal.valid
    assert proposal.approvals == (ApprovalChange("ops", 1, 0),)
    assert proposal.sections == ("approvals",)
    assert (proposal.verdict_before, proposal.verdict_after) == (Verdict.PENDING, Verdict.PASS)


def test_invalid_proposed_rules_carry_file_line_and_key() -> None:
    error = ConfigError("unknown key", file=FILE, line=12, key="performance.speed")
    proposal = propose(gate_input(), error, FILE)
    assert not proposal.valid
    assert proposal.problem == f"{FILE}:12: performance.speed: unknown key"
    assert proposal.verdict_after is None


def test_moving_a_rule_within_the_file_changes_nothing() -> None:
    moved = rules(dataclasses.replace(SECURITY, line=40))
    proposal = propose(gate_input(rules=rules(dataclasses.replace(SECURITY, line=3))), moved, FILE)
    assert proposal.approvals == () and proposal.sections == ()
    assert proposal.verdict_before == proposal.verdict_after


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"security": 1}, {"security": 1}, ()),
        ({"security": 1}, {"security": 2}, (ApprovalChange("security", 1, 2),)),
        ({}, {"ops": 1}, (ApprovalChange("ops", 0, 1),)),
        (
            {"ops": 1, "security": 1},
            {},
            (ApprovalChange("ops", 1, 0), ApprovalChange("security", 1, 0)),
        ),
    ],
)
def test_approval_changes(
    before: dict[str, int], after: dict[str, int], expected: tuple[ApprovalChange, ...]
) -> None:
    assert approval_changes(before, after) == expected


def test_changed_sections_ignore_bookkeeping() -> None:
    current = rules(SECURITY, source="main", digest="1")
    assert changed_sections(current, rules(SECURITY, source="pr", digest="2")) == ()
    longer = rules(SECURITY, waivers=WaiverRules(max_days=365))
    assert changed_sections(current, longer) == ("waivers",)
    assert changed_sections(ConfigError("bad"), longer) == ()
