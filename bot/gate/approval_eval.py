"""Evaluation of the approval rules against the reviews, with its explanation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.gate.approvals import assign_approvers, is_bot_login, is_member, latest_reviews
from bot.gate.conditions import condition_applies, risk_additions
from bot.gate.model import (
    ApprovalOutcome,
    NodeStatus,
    PullRequestFacts,
    ResultNode,
    Review,
    ReviewState,
    RiskScore,
)
from checks.rules_model import ApprovalRule, Rules


@dataclass(frozen=True, slots=True)
class Requirement:
    """An approval rule that applies to this pull request, with its final count."""

    rule: ApprovalRule
    """The rule from the rules file."""
    required: int
    """Approvals needed, risk raises included."""
    why: tuple[str, ...]
    """Why it is required and how the count came about."""


@dataclass(frozen=True, slots=True)
class ApprovalEvaluation:
    """Outcome of the approval part of the gate."""

    node: ResultNode
    """`approvals` node of the explanation tree."""
    outcomes: tuple[ApprovalOutcome, ...]
    """One per required rule."""
    misconfigured: bool
    """True when the rules cannot be satisfied as written (fail closed)."""
    stale: tuple[str, ...] = ()
    """Members whose approval is for an older commit."""


def owners(rule: ApprovalRule, org: str) -> tuple[str, ...]:
    """Who may approve, as shown to people: `@org/team` then `@user`."""
    teams = tuple(f"@{org}/{team}" if org else f"@{team}" for team in rule.teams)
    return teams + tuple(f"@{user.lstrip('@')}" for user in rule.users)


def requirement(
    rule: ApprovalRule, rules: Rules, pr: PullRequestFacts, risk: RiskScore
) -> Requirement:
    """How many approvals `rule` needs here; risk raises apply even when `when` does not hold."""
    applicability = condition_applies(rule.when, pr, risk)
    additions = risk_additions(rules.risk, rule.name, risk.total)
    base = rule.count if applicability.applies else 0
    required = base + sum(points for points, _ in additions)
    return Requirement(rule, required, applicability.reasons + tuple(r for _, r in additions))


def unknown_raise_targets(rules: Rules, score: int) -> list[str]:
    """Rule names that a risk raise reached by `score` refers to but no approval rule has."""
    names = {rule.name for rule in rules.approvals}
    reached = [r for r in rules.risk.raises if score >= r.min_score]
    return sorted({n for r in reached for n, add in r.add.items() if add > 0 and n not in names})


def evaluate_approvals(
    rules: Rules,
    pr: PullRequestFacts,
    risk: RiskScore,
    reviews: tuple[Review, ...],
    memberships: Mapping[str, frozenset[str]],
) -> ApprovalEvaluation:
    """Required rules, who counts for which (one rule per person), and why."""
    needed = [requirement(rule, rules, pr, risk) for rule in rules.approvals]
    required = [r for r in needed if r.required > 0]
    latest = latest_reviews(reviews)
    approvers, notes = _valid_approvers(latest, pr)
    eligible = [
        frozenset(a for a in approvers if is_member(a, r.rule, memberships)) for r in required
    ]
    assigned = assign_approvers([(r.required, e) for r, e in zip(required, eligible, strict=True)])
    outcomes = tuple(
        _outcome(req, assigned[i], latest, memberships, pr) for i, req in enumerate(required)
    )
    stale = _stale_members(latest, pr, [r.rule for r in required], memberships)
    notes += _role_notes(approvers, eligible, assigned, required)
    nodes = _rule_nodes(needed, outcomes)
    broken = _broken_nodes(rules, required, risk.total)
    children = (*broken, *nodes, *notes)
    node = _approvals_node(outcomes, broken, children)
    return ApprovalEvaluation(node, outcomes, bool(broken), stale)


def _valid_approvers(
    latest: dict[str, Review], pr: PullRequestFacts
) -> tuple[list[str], tuple[ResultNode, ...]]:
    """Logins whose latest review approves the head commit, and notes on those that do not."""
    valid: list[str] = []
    notes: list[ResultNode] = []
    for review in latest.values():
        if review.state is not ReviewState.APPROVED:
            continue
        problem = _approval_problem(review, pr)
        if problem:
            notes.append(ResultNode(f"review by @{review.user}", NodeStatus.SKIPPED, problem))
        else:
            valid.append(review.user)
    return sorted(valid), tuple(notes)


def _approval_problem(review: Review, pr: PullRequestFacts) -> str:
    if review.user.lower() == pr.author.lower():
        return f"approval by @{review.user} does not count: they opened the pull request"
    if review.user_is_bot or is_bot_login(review.user):
        return f"approval by @{review.user} does not count: bots never approve"
    if review.commit_id != pr.head_sha:
        short = review.commit_id[:7]
        return f"approval by @{review.user} is for an older commit ({short}); it needs renewing"
    return ""


def _outcome(
    req: Requirement,
    approvers: list[str],
    latest: dict[str, Review],
    memberships: Mapping[str, frozenset[str]],
    pr: PullRequestFacts,
) -> ApprovalOutcome:
    blockers = tuple(
        review.user
        for review in latest.values()
        if review.state is ReviewState.CHANGES_REQUESTED
        and is_member(review.user, req.rule, memberships)
    )
    shown = owners(req.rule, pr.org)
    return ApprovalOutcome(req.rule.name, shown, req.required, tuple(approvers), blockers)


def _stale_members(
    latest: dict[str, Review],
    pr: PullRequestFacts,
    rules: list[ApprovalRule],
    memberships: Mapping[str, frozenset[str]],
) -> tuple[str, ...]:
    return tuple(
        review.user
        for review in latest.values()
        if review.state is ReviewState.APPROVED
        and review.commit_id != pr.head_sha
        and review.user.lower() != pr.author.lower()
        and any(is_member(review.user, rule, memberships) for rule in rules)
    )


def _role_notes(
    approvers: list[str],
    eligible: list[frozenset[str]],
    assigned: dict[int, list[str]],
    required: list[Requirement],
) -> tuple[ResultNode, ...]:
    """Explain approvers who count for no rule, or for one rule among several they belong to."""
    notes: list[ResultNode] = []
    for login in approvers:
        rules = [required[i].rule.name for i, e in enumerate(eligible) if login in e]
        counted = [required[i].rule.name for i, who in assigned.items() if login in who]
        reason = _role_reason(login, rules, counted)
        if reason:
            notes.append(ResultNode(f"approval by @{login}", NodeStatus.SKIPPED, reason))
    return tuple(notes)


def _role_reason(login: str, rules: list[str], counted: list[str]) -> str:
    if not rules:
        return f"approval by @{login} counts for no required rule: not a member of any"
    if len(rules) == 1:
        return "" if counted else f"approval by @{login} is not needed: {rules[0]} is complete"
    where = f"counted for {counted[0]} only" if counted else "not needed by any of them"
    return f"@{login} belongs to {', '.join(rules)}; {where} (one person counts for one rule)"


def _rule_nodes(
    needed: list[Requirement], outcomes: tuple[ApprovalOutcome, ...]
) -> tuple[ResultNode, ...]:
    by_name = {o.rule: o for o in outcomes}
    nodes = []
    for req in needed:
        why = tuple(ResultNode("why", NodeStatus.PASSED, reason) for reason in req.why)
        outcome = by_name.get(req.rule.name)
        if outcome is None:
            reason = "; ".join(req.why) if req.why else "requires no approval"
            nodes.append(ResultNode(f"approval rule {req.rule.name}", NodeStatus.SKIPPED, reason))
            continue
        status, reason = describe_outcome(outcome)
        nodes.append(ResultNode(f"approval rule {req.rule.name}", status, reason, why))
    return tuple(nodes)


def describe_outcome(outcome: ApprovalOutcome) -> tuple[NodeStatus, str]:
    """Status and words for one required rule."""
    got = f"{len(outcome.approvers)} of {outcome.required}"
    by = ", ".join(f"@{login}" for login in outcome.approvers)
    who = " or ".join(outcome.owners) or "nobody (the rule lists no team or user)"
    if outcome.blocked_by:
        names = ", ".join(f"@{login}" for login in outcome.blocked_by)
        return NodeStatus.WAITING, (
            f"changes requested by {names} ({outcome.rule}); "
            "blocks until the review is dismissed or they approve"
        )
    if outcome.satisfied:
        return NodeStatus.PASSED, f"approved by {by} ({got})"
    plural = "s" if outcome.missing != 1 else ""
    so_far = f"; {got} so far: {by}" if outcome.approvers else ""
    return NodeStatus.WAITING, f"waiting on {outcome.missing} approval{plural} from {who}{so_far}"


def _broken_nodes(rules: Rules, required: list[Requirement], score: int) -> tuple[ResultNode, ...]:
    """Rules that can never be satisfied as written: the gate fails instead of waiting forever."""
    broken = [
        ResultNode("rules", NodeStatus.FAILED, f"risk raise names unknown approval rule {name!r}")
        for name in unknown_raise_targets(rules, score)
    ]
    broken += [
        ResultNode(
            "rules",
            NodeStatus.FAILED,
            f"no one can approve rule {req.rule.name}: it lists no team or user",
        )
        for req in required
        if not req.rule.teams and not req.rule.users
    ]
    return tuple(broken)


def _approvals_node(
    outcomes: tuple[ApprovalOutcome, ...],
    broken: tuple[ResultNode, ...],
    children: tuple[ResultNode, ...],
) -> ResultNode:
    if broken:
        return ResultNode("approvals", NodeStatus.FAILED, broken[0].reason, children)
    waiting = [describe_outcome(o)[1] for o in outcomes if not o.satisfied]
    if waiting:
        return ResultNode("approvals", NodeStatus.WAITING, "; ".join(waiting), children)
    if not outcomes:
        return ResultNode("approvals", NodeStatus.PASSED, "no approval required", children)
    names = ", ".join(o.rule for o in outcomes)
    return ResultNode(
        "approvals", NodeStatus.PASSED, f"all required approvals given ({names})", children
    )
