"""The gate's own check-run output and the sticky summary comment, from a GateResult."""

from __future__ import annotations

from bot.gate.approval_eval import describe_outcome
from bot.gate.decide import HELP_TEXT
from bot.gate.model import GateResult, NodeStatus, ResultNode, Verdict
from bot.gate.proposal import RulesProposal
from bot.github.models import CheckRunOutput
from bot.render.jinja import render
from bot.render.markers import SUMMARY_MARKER
from bot.render.text import (
    COMMENT_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    TITLE_MAX,
    neutralise_prose,
    shorten,
    truncate,
)

STATUS_ICONS = {
    NodeStatus.PASSED: "✅",
    NodeStatus.RUNNING: "⏳",
    NodeStatus.WAITING: "⏳",
    NodeStatus.FAILED: "❌",
    NodeStatus.SKIPPED: "⏭️",
}
VERDICT_ICONS = {Verdict.PASS: "✅", Verdict.PENDING: "⏳", Verdict.FAIL: "❌"}
#: Blocking findings listed by id (with their waive line) at most; the check runs list all.
MAX_BLOCKING_LISTED = 30


def render_tree(node: ResultNode, depth: int = 0) -> str:
    """The explanation as a nested markdown list, one node per line."""
    reason = neutralise_prose(node.reason)
    line = f"{'  ' * depth}- {STATUS_ICONS[node.status]} **{node.name}**: {reason}"
    return "\n".join([line, *(render_tree(child, depth + 1) for child in node.children)])


def headline(result: GateResult) -> str:
    """One line saying where the gate stands."""
    if result.verdict is Verdict.PASS:
        return "ready to merge"
    return result.tree.reason


def blocking_items(result: GateResult) -> list[dict[str, str]]:
    """Each finding still blocking (waivers applied) with the exact line that waives it."""
    found = [f for state in result.results for cr in state.results for f in cr.result.findings]
    blocking = sorted(
        {f.finding_id: f for f in found if f.blocking}.values(),
        key=lambda f: (-f.severity.rank, f.check, f.location),
    )
    return [
        {
            "id": f.finding_id,
            "check": f.check,
            "severity": str(f.severity),
            "location": f.location,
            "waive": f"/gate waive {f.finding_id} <reason>",
        }
        for f in blocking
    ]


def _proposal_values(proposal: RulesProposal | None) -> dict[str, object]:
    if proposal is None:
        return {"proposal": None}
    changes = [
        {"rule": c.rule, "before": _required_text(c.before), "after": _required_text(c.after)}
        for c in proposal.approvals
    ]
    return {"proposal": proposal, "approval_changes": changes}


def _required_text(count: int) -> str:
    return f"{count} required" if count else "not required"


def _blocking_values(result: GateResult) -> dict[str, object]:
    items = blocking_items(result)
    return {
        "blocking": items[:MAX_BLOCKING_LISTED],
        "blocking_more": max(0, len(items) - MAX_BLOCKING_LISTED),
    }


def render_proposal(proposal: RulesProposal) -> str:
    """The section on a pull request's own rules file: valid or not, and what it would change."""
    return render("proposal.md.j2", **_proposal_values(proposal))


def render_gate_output(result: GateResult, proposal: RulesProposal | None = None) -> CheckRunOutput:
    """Output of the `connector-gate` check run: the explanation tree, next steps, risk."""
    summary = render(
        "gate_summary.md.j2",
        tree=render_tree(result.tree),
        next_steps=result.next_steps,
        **_blocking_values(result),
        **_proposal_values(proposal),
    )
    text = render("gate_text.md.j2", risk=result.risk, waived=result.waived)
    return CheckRunOutput(
        title=shorten(headline(result), TITLE_MAX),
        summary=truncate(summary, SUMMARY_MAX),
        text=truncate(text, TEXT_MAX),
    )


def _check_items(result: GateResult) -> list[dict[str, object]]:
    return [
        {
            "name": c.check,
            "icon": STATUS_ICONS[c.status],
            "done": c.status in (NodeStatus.PASSED, NodeStatus.SKIPPED),
            "reason": c.reason,
        }
        for c in result.checks
    ]


def _approval_items(result: GateResult) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for outcome in result.approvals:
        status, reason = describe_outcome(outcome)
        items.append(
            {
                "name": outcome.rule,
                "owners": " or ".join(outcome.owners) or "nobody",
                "icon": STATUS_ICONS[status],
                "done": outcome.satisfied,
                "reason": reason,
            }
        )
    return items


def render_summary_comment(
    result: GateResult, head_sha: str, proposal: RulesProposal | None = None
) -> str:
    """The sticky summary comment: an onboarding checklist that the bot edits in place."""
    body = render(
        "summary_comment.md.j2",
        marker=SUMMARY_MARKER,
        icon=VERDICT_ICONS[result.verdict],
        headline=headline(result),
        head_sha=head_sha[:7],
        risk=result.risk.total,
        checks=_check_items(result),
        approvals=_approval_items(result),
        waived=result.waived,
        next_steps=result.next_steps,
        help_text=HELP_TEXT,
        **_blocking_values(result),
        **_proposal_values(proposal),
    )
    return truncate(body, COMMENT_MAX)
