"""Table-driven tests of the gate's evaluation."""

from __future__ import annotations

import dataclasses

import pytest

from bot.gate.evaluate import evaluate
from bot.gate.model import CheckState, GateResult, ReviewState, RunStatus, Verdict, Waiver
from bot.render.conclusion import gate_check_state
from checks.errors import ConfigError
from checks.model import Conclusion, Severity
from checks.rules_model import ApprovalCondition, ApprovalRule, RiskRaise, RiskRules
from tests.gate.factories import (
    OLD,
    OPS,
    SECURITY,
    TODAY,
    all_passing,
    approve,
    completed,
    concluded,
    connector,
    finding,
    gate_input,
    manifest,
    pr,
    review,
    rules,
    unreadable,
)

LEAK = finding()
WAIVE_LEAK = Waiver(LEAK.finding_id, "test fixture", "sam", TODAY)
EXPIRED = dataclasses.replace(WAIVE_LEAK, until=TODAY.replace(day=TODAY.day - 1))
RESTRICTED_PR = pr(connectors=(connector(manifest(classification="restricted"), manifest()),))
PERF_OPS = dataclasses.replace(OPS, when=ApprovalCondition(changed=("connectors/**/perf/*.js",)))
LABEL_OPS = dataclasses.replace(OPS, when=ApprovalCondition(labels=("needs-ops",)))
CONFIDENTIAL_OPS = dataclasses.replace(
    OPS, when=ApprovalCondition(data_classification=("confidential", "restricted"))
)
RISKY_OPS = dataclasses.replace(OPS, when=ApprovalCondition(min_risk=4))
NOBODY = ApprovalRule(name="legal")
SOS = rules(SECURITY, OPS)


def explanation(result: GateResult) -> str:
    return "\n".join(node.reason for node in result.tree.walk())


CASES = [
    ("member approves head", {"reviews": (approve("sam"),)}, Verdict.PASS, ""),
    ("no review yet", {}, Verdict.PENDING, "waiting on 1 approval from @acme/security"),
    (
        "author approval never counts",
        {"reviews": (approve("author"),)},
        Verdict.PENDING,
        "approval by @author does not count: they opened the pull request",
    ),
    (
        "approval of an older commit is stale",
        {"reviews": (approve("sam", OLD),)},
        Verdict.PENDING,
        "approval by @sam is for an older commit (bbbbbbb)",
    ),
    (
        "non-member approval counts for nothing",
        {"reviews": (approve("random"),)},
        Verdict.PENDING,
        "approval by @random counts for no required rule",
    ),
    (
        "bot approval never counts",
        {
            "reviews": (approve("helper[bot]"),),
            "memberships": {"helper[bot]": frozenset({"security"})},
        },
        Verdict.PENDING,
        "bots never approve",
    ),
    (
        "same person in both teams fills one rule only",
        {"rules": SOS, "reviews": (approve("both"),)},
        Verdict.PENDING,
        "@both belongs to security, ops; counted for security only "
        "(one person counts for one rule)",
    ),
    (
        "two people cover two rules",
        {"rules": SOS, "reviews": (approve("both"), approve("olga"))},
        Verdict.PASS,
        "",
    ),
    (
        "matching moves the two-team member to the rule only they can fill",
        {"rules": SOS, "reviews": (approve("both"), approve("sam"))},
        Verdict.PASS,
        "@both belongs to security, ops; counted for ops only",
    ),
    (
        "changes requested by a member blocks",
        {"reviews": (approve("sam"), review("sue", ReviewState.CHANGES_REQUESTED, 5))},
        Verdict.PENDING,
        "changes requested by @sue (security); blocks until the review is dismissed",
    ),
    (
        "dismissed changes request stops blocking",
        {
            "reviews": (
                approve("sam"),
                review("sue", ReviewState.CHANGES_REQUESTED, 5),
                review("sue", ReviewState.DISMISSED, 9),
            )
        },
        Verdict.PASS,
        "",
    ),
    (
        "re-approval replaces the changes request",
        {"reviews": (review("sue", ReviewState.CHANGES_REQUESTED, 5), approve("sue", minutes=9))},
        Verdict.PASS,
        "",
    ),
    (
        "a later comment does not undo an approval",
        {"reviews": (approve("sam"), review("sam", ReviewState.COMMENTED, 5))},
        Verdict.PASS,
        "",
    ),
    (
        "a later dismissal undoes an approval",
        {"reviews": (approve("sam"), review("sam", ReviewState.DISMISSED, 5))},
        Verdict.PENDING,
        "waiting on 1 approval",
    ),
    (
        "changes requested by a non-member does not block",
        {"reviews": (approve("sam"), review("random", ReviewState.CHANGES_REQUESTED, 5))},
        Verdict.PASS,
        "",
    ),
    (
        "restricted data raises security to two approvals",
        {"pr": RESTRICTED_PR, "reviews": (approve("sam"),)},
        Verdict.PENDING,
        "waiting on 1 approval from @acme/security; 1 of 2 so far: @sam",
    ),
    (
        "two security approvals satisfy the raised rule",
        {"pr": RESTRICTED_PR, "reviews": (approve("sam"), approve("sue"))},
        Verdict.PASS,
        "risk score 6 >= 5 adds 1",
    ),
    (
        "risk raise makes a rule apply even when its condition does not hold",
        {
            "rules": rules(SECURITY, PERF_OPS, risk=RiskRules((RiskRaise(5, {"ops": 1}),))),
            "pr": RESTRICTED_PR,
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "waiting on 1 approval from @acme/ops",
    ),
    (
        "changed-files condition not matching skips the rule",
        {"rules": rules(SECURITY, PERF_OPS), "reviews": (approve("sam"),)},
        Verdict.PASS,
        "does not apply: changed files do not match connectors/**/perf/*.js",
    ),
    (
        "changed-files condition matching with ** requires the rule",
        {
            "rules": rules(SECURITY, PERF_OPS),
            "pr": pr(
                changed_files=(
                    "connectors/acme-weather/perf/deep/../load.js",
                    "connectors/x/perf/load.js",
                )
            ),
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "waiting on 1 approval from @acme/ops",
    ),
    (
        "label condition",
        {
            "rules": rules(SECURITY, LABEL_OPS),
            "pr": pr(labels=("Needs-Ops",)),
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "labels match needs-ops",
    ),
    (
        "data classification condition not met",
        {"rules": rules(SECURITY, CONFIDENTIAL_OPS), "reviews": (approve("sam"),)},
        Verdict.PASS,
        "data classification public do not match",
    ),
    (
        "data classification condition met",
        {
            "rules": rules(SECURITY, CONFIDENTIAL_OPS),
            "pr": pr(connectors=(connector(manifest(classification="confidential"), manifest()),)),
            "reviews": (approve("sam"), approve("olga")),
        },
        Verdict.PASS,
        "data classification confidential match",
    ),
    (
        "unreadable manifest counts as sensitive data",
        {
            "rules": rules(SECURITY, CONFIDENTIAL_OPS),
            "pr": pr(connectors=(unreadable(),)),
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "waiting on 1 approval from @acme/ops",
    ),
    (
        "min_risk condition met by the manifest's score",
        {
            "rules": rules(SECURITY, RISKY_OPS),
            "checks": (completed("secrets", finding(severity=Severity.LOW)), completed("tests")),
            "pr": pr(connectors=(connector(manifest(classification="confidential"), manifest()),)),
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "risk score 4 >= 4",
    ),
    (
        "invalid rules fail closed",
        {
            "rules": ConfigError(
                "unknown key", file=".github/connector-gate.yml", line=3, key="aprovals"
            )
        },
        Verdict.FAIL,
        "rules are invalid: .github/connector-gate.yml:3: aprovals: unknown key",
    ),
    (
        "failing check fails even when approved",
        {"checks": (completed("secrets", LEAK),), "reviews": (approve("sam"),)},
        Verdict.FAIL,
        "secrets check failing: 1 blocking finding (1 high)",
    ),
    (
        "check that could not run fails",
        {"checks": (concluded("dependencies", Conclusion.ERROR, "pip-audit crashed"),)},
        Verdict.FAIL,
        "dependencies check could not run: pip-audit crashed",
    ),
    (
        "undecided check fails closed",
        {"checks": (concluded("dependencies", Conclusion.NEUTRAL, "OSV unreachable"),)},
        Verdict.FAIL,
        "dependencies check could not decide: OSV unreachable",
    ),
    (
        "running check keeps the gate pending",
        {
            "checks": (*all_passing(), CheckState("performance", RunStatus.IN_PROGRESS)),
            "reviews": (approve("sam"),),
        },
        Verdict.PENDING,
        "performance check running",
    ),
    (
        "queued check keeps the gate pending",
        {"checks": (CheckState("tests", RunStatus.QUEUED),)},
        Verdict.PENDING,
        "tests check queued",
    ),
    (
        "failure beats running",
        {"checks": (completed("secrets", LEAK), CheckState("tests", RunStatus.IN_PROGRESS))},
        Verdict.FAIL,
        "secrets check failing",
    ),
    (
        "nothing evaluated is never a pass",
        {"checks": (), "reviews": (approve("sam"),)},
        Verdict.FAIL,
        "nothing was evaluated",
    ),
    (
        "every check skipped is never a pass",
        {"checks": (CheckState("secrets", RunStatus.COMPLETED),), "reviews": (approve("sam"),)},
        Verdict.FAIL,
        "nothing was evaluated",
    ),
    (
        "waived finding stops blocking",
        {
            "checks": (completed("secrets", LEAK),),
            "waivers": (WAIVE_LEAK,),
            "reviews": (approve("sam"),),
        },
        Verdict.PASS,
        "every blocking finding waived (1 waived)",
    ),
    (
        "expired waiver blocks again",
        {
            "checks": (completed("secrets", LEAK),),
            "waivers": (EXPIRED,),
            "reviews": (approve("sam"),),
        },
        Verdict.FAIL,
        "secrets check failing: 1 blocking finding (1 high)",
    ),
    (
        "risk raise naming an unknown rule fails closed",
        {"rules": rules(OPS), "pr": RESTRICTED_PR, "reviews": (approve("olga"),)},
        Verdict.FAIL,
        "risk raise names unknown approval rule 'security'",
    ),
    (
        "rule nobody can approve fails closed",
        {"rules": rules(SECURITY, NOBODY), "reviews": (approve("sam"),)},
        Verdict.FAIL,
        "no one can approve rule legal",
    ),
    ("no approval rules: checks decide", {"rules": rules()}, Verdict.PASS, "no approval required"),
]


@pytest.mark.parametrize(
    ("name", "changes", "verdict", "explains"), CASES, ids=[c[0] for c in CASES]
)
def test_evaluation(name: str, changes: dict[str, object], verdict: Verdict, explains: str) -> None:
    result = evaluate(gate_input(**changes))
    assert result.verdict is verdict, explanation(result)
    assert explains in explanation(result)


@pytest.mark.parametrize(
    ("changes", "status", "conclusion"),
    [
        ({"reviews": (approve("sam"),)}, "completed", "success"),
        ({}, "completed", "action_required"),
        ({"checks": (CheckState("tests", RunStatus.IN_PROGRESS),)}, "in_progress", None),
        ({"checks": (completed("secrets", LEAK),)}, "completed", "failure"),
        ({"rules": ConfigError("bad")}, "completed", "failure"),
    ],
)
def test_gate_check_state(changes: dict[str, object], status: str, conclusion: str | None) -> None:
    state = gate_check_state(evaluate(gate_input(**changes)))
    assert (state.status, state.conclusion) == (status, conclusion)


def test_waived_findings_are_reported_with_who_why_until() -> None:
    result = evaluate(gate_input(checks=(completed("secrets", LEAK),), waivers=(WAIVE_LEAK,)))
    assert [f.finding_id for f in result.waived] == [LEAK.finding_id]
    assert result.waived[0].waived_by == f"sam: test fixture (until {TODAY.isoformat()})"


def test_next_steps_say_what_to_do() -> None:
    result = evaluate(
        gate_input(checks=(completed("secrets", LEAK),), reviews=(approve("sam", OLD),))
    )
    steps = "\n".join(result.next_steps)
    assert "/gate waive <finding-id> <reason>" in steps
    assert "Ask @acme/security for 1 more approval (security)" in steps
    assert "Ask @sam to approve again" in steps


def test_approval_outcomes_name_rules_and_teams() -> None:
    result = evaluate(gate_input(rules=SOS, reviews=(approve("olga"),)))
    by_rule = {o.rule: o for o in result.approvals}
    assert by_rule["security"].owners == ("@acme/security",)
    assert by_rule["ops"].approvers == ("olga",)
    assert by_rule["ops"].satisfied and not by_rule["security"].satisfied


def test_states_from_reports_groups_per_check() -> None:
    from bot.gate.model import states_from_reports
    from checks.model import CheckResult, ConnectorReport

    ok = CheckResult("secrets", Conclusion.SUCCESS, "clean")
    reports = [
        ConnectorReport("a", "connectors/a", (ok,)),
        ConnectorReport("b", "connectors/b", (ok,)),
    ]
    states = {
        s.check: s for s in states_from_reports(reports, running=["tests"], expected=["manifest"])
    }
    assert states["manifest"].status is RunStatus.QUEUED
    assert states["tests"].status is RunStatus.IN_PROGRESS
    assert [r.connector for r in states["secrets"].results] == ["a", "b"]
    assert states["secrets"].status is RunStatus.COMPLETED
