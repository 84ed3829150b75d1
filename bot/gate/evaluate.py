"""The gate's evaluation: checks, risk and approvals folded into one explained verdict."""

from __future__ import annotations

from collections.abc import Iterable

from bot.gate.approval_eval import ApprovalEvaluation, evaluate_approvals
from bot.gate.model import (
    CheckOutcome,
    CheckState,
    ConnectorResult,
    GateInput,
    GateResult,
    NodeStatus,
    ResultNode,
    RiskScore,
    RunStatus,
    Verdict,
)
from bot.gate.risk import risk_score
from bot.gate.waivers import apply_waivers_to_states
from checks.errors import ConfigError
from checks.model import CheckResult, Conclusion, Finding, worst_conclusion
from checks.policy import count_by_severity
from checks.rules_model import Rules


def evaluate(gate: GateInput) -> GateResult:
    """Decide pass, pending or fail, and explain why. Fails closed on anything unexpected."""
    if isinstance(gate.rules, ConfigError):
        return _invalid_rules(gate.rules)
    if gate.pr.files_truncated:
        return _too_large()
    states = apply_waivers_to_states(gate.checks, gate.waivers, gate.today)
    findings = tuple(f for state in states for f in _findings(state))
    risk = risk_score(gate.pr.connectors, findings)
    approvals = evaluate_approvals(gate.rules, gate.pr, risk, gate.reviews, gate.memberships)
    checks = tuple(check_outcome(state) for state in states)
    return _result(gate.rules, states, checks, risk, approvals, findings)


def _findings(state: CheckState) -> Iterable[Finding]:
    for connector_result in state.results:
        yield from connector_result.result.findings


def _invalid_rules(error: ConfigError) -> GateResult:
    reason = f"rules are invalid: {error}"
    node = ResultNode("rules", NodeStatus.FAILED, reason)
    tree = ResultNode("connector-gate", NodeStatus.FAILED, reason, (node,))
    step = "Fix the rules file; the gate stays closed until it is valid."
    return GateResult(Verdict.FAIL, False, tree, RiskScore(0), next_steps=(step,))


def _too_large() -> GateResult:
    # Files beyond GitHub's 3000 are invisible to the review: passing would be a guess.
    reason = "GitHub lists only the first 3000 changed files; not every change can be reviewed"
    node = ResultNode("changed files", NodeStatus.FAILED, reason)
    tree = ResultNode("connector-gate", NodeStatus.FAILED, reason, (node,))
    step = "Split the pull request so that it changes fewer than 3000 files."
    return GateResult(Verdict.FAIL, False, tree, RiskScore(0), next_steps=(step,))


def check_outcome(state: CheckState) -> CheckOutcome:
    """One check's state in words, across its connectors (waivers already applied)."""
    if state.status is not RunStatus.COMPLETED:
        word = "queued" if state.status is RunStatus.QUEUED else "running"
        return CheckOutcome(state.check, NodeStatus.RUNNING, f"{state.check} check {word}")
    if not state.results:
        return CheckOutcome(
            state.check, NodeStatus.SKIPPED, f"{state.check}: no connector to check"
        )
    results = [cr.result for cr in state.results]
    conclusion = worst_conclusion(r.conclusion for r in results)
    reason = _check_reason(state.check, conclusion, results)
    blocking = sum(len(r.blocking_findings) for r in results)
    return CheckOutcome(state.check, _STATUS[conclusion], reason, blocking)


#: How a check's folded conclusion counts for the gate; undecided and broken checks fail it.
_STATUS = {
    Conclusion.SUCCESS: NodeStatus.PASSED,
    Conclusion.SKIPPED: NodeStatus.SKIPPED,
    Conclusion.NEUTRAL: NodeStatus.FAILED,
    Conclusion.ERROR: NodeStatus.FAILED,
    Conclusion.FAILURE: NodeStatus.FAILED,
}


def _check_reason(check: str, conclusion: Conclusion, results: list[CheckResult]) -> str:
    blocking = [f for r in results for f in r.blocking_findings]
    waived = sum(1 for r in results for f in r.findings if f.waived_by)
    tail = f", {waived} waived" if waived else ""
    if conclusion is Conclusion.FAILURE and blocking:
        plural = "s" if len(blocking) != 1 else ""
        detail = count_by_severity(blocking)
        return f"{check} check failing: {len(blocking)} blocking finding{plural} ({detail}){tail}"
    worst = next(r for r in results if r.conclusion is conclusion)
    prefix = {
        Conclusion.FAILURE: "failing",
        Conclusion.ERROR: "could not run",
        Conclusion.NEUTRAL: "could not decide",
        Conclusion.SUCCESS: "passed",
        Conclusion.SKIPPED: "skipped",
    }[conclusion]
    return f"{check} check {prefix}: {worst.summary}{tail}"


def _check_node(state: CheckState, outcome: CheckOutcome) -> ResultNode:
    children = tuple(_connector_node(cr) for cr in state.results)
    return ResultNode(f"check {state.check}", outcome.status, outcome.reason, children)


def _connector_node(connector_result: ConnectorResult) -> ResultNode:
    result = connector_result.result
    status = _STATUS[result.conclusion]
    return ResultNode(f"connector {connector_result.connector}", status, result.summary)


def _checks_node(states: tuple[CheckState, ...], checks: tuple[CheckOutcome, ...]) -> ResultNode:
    children = tuple(_check_node(s, o) for s, o in zip(states, checks, strict=True))
    if not checks or all(c.status is NodeStatus.SKIPPED for c in checks):
        return ResultNode("checks", NodeStatus.FAILED, "nothing was evaluated", children)
    for status in (NodeStatus.FAILED, NodeStatus.RUNNING):
        hit = [c.reason for c in checks if c.status is status]
        if hit:
            return ResultNode("checks", status, "; ".join(hit), children)
    passed = sum(1 for c in checks if c.status is NodeStatus.PASSED)
    return ResultNode("checks", NodeStatus.PASSED, f"{passed} checks passed", children)


def _risk_node(risk: RiskScore) -> ResultNode:
    children = tuple(
        ResultNode(f.connector or "pull request", NodeStatus.PASSED, f"+{f.points}: {f.reason}")
        for f in risk.factors
    )
    return ResultNode("risk", NodeStatus.PASSED, f"risk score {risk.total}", children)


def _verdict(checks: ResultNode, approvals: ResultNode) -> tuple[Verdict, bool, str]:
    """Failures first, then running checks, then people; only then a pass."""
    for node in (checks, approvals):
        if node.status is NodeStatus.FAILED:
            return Verdict.FAIL, False, node.reason
    if checks.status is NodeStatus.RUNNING:
        return Verdict.PENDING, True, checks.reason
    if approvals.status is NodeStatus.WAITING:
        return Verdict.PENDING, False, approvals.reason
    if checks.status is NodeStatus.PASSED and approvals.status is NodeStatus.PASSED:
        return Verdict.PASS, False, f"{checks.reason}; {approvals.reason}"
    return Verdict.FAIL, False, "the gate could not reach a decision"


_ROOT_STATUS = {
    Verdict.PASS: NodeStatus.PASSED,
    Verdict.PENDING: NodeStatus.WAITING,
    Verdict.FAIL: NodeStatus.FAILED,
}


def _result(
    rules: Rules,
    states: tuple[CheckState, ...],
    checks: tuple[CheckOutcome, ...],
    risk: RiskScore,
    approvals: ApprovalEvaluation,
    findings: tuple[Finding, ...],
) -> GateResult:
    checks_node = _checks_node(states, checks)
    verdict, on_checks, reason = _verdict(checks_node, approvals.node)
    status = NodeStatus.RUNNING if on_checks else _ROOT_STATUS[verdict]
    children = (checks_node, _risk_node(risk), approvals.node)
    tree = ResultNode("connector-gate", status, reason, children)
    waived = tuple(f for f in findings if f.waived_by)
    steps = next_steps(rules, checks, approvals)
    return GateResult(
        verdict, on_checks, tree, risk, checks, approvals.outcomes, states, waived, steps
    )


def next_steps(
    rules: Rules, checks: tuple[CheckOutcome, ...], approvals: ApprovalEvaluation
) -> tuple[str, ...]:
    """What to do next, in words, most urgent first."""
    steps: list[str] = []
    for check in checks:
        steps += _check_steps(rules, check)
    if approvals.misconfigured:
        steps.append(f"Fix the approval rules: {approvals.node.reason}.")
    for outcome in approvals.outcomes:
        if outcome.blocked_by:
            names = ", ".join(f"@{x}" for x in outcome.blocked_by)
            steps.append(f"Address the changes requested by {names}, then ask for a new review.")
        elif not outcome.satisfied:
            who = " or ".join(outcome.owners)
            steps.append(f"Ask {who} for {outcome.missing} more approval ({outcome.rule}).")
    if approvals.stale:
        names = ", ".join(f"@{x}" for x in approvals.stale)
        steps.append(f"Ask {names} to approve again: their approval is for an older commit.")
    return tuple(steps)


def _check_steps(rules: Rules, check: CheckOutcome) -> list[str]:
    if check.status is NodeStatus.RUNNING:
        return [f"Wait for the {check.check} check to finish."]
    if check.status is not NodeStatus.FAILED:
        return []
    if check.blocking_findings:
        waiver = rules.waivers.categories.get(check.check, "security")
        return [
            f"Fix the blocking findings of {check.check}, or ask a member of the {waiver} "
            "approvers to waive them with `/gate waive <finding-id> <reason>`."
        ]
    return [f"Fix the cause, then run `/gate rerun {check.check}`."]
