"""The gate's own check-run output and the sticky summary comment, from a GateResult."""

from __future__ import annotations

from bot.gate.approval_eval import describe_outcome
from bot.gate.decide import HELP_TEXT
from bot.gate.model import GateResult, NodeStatus, ResultNode, Verdict
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


def render_gate_output(result: GateResult) -> CheckRunOutput:
    """Output of the `connector-gate` check run: the explanation tree, next steps, risk."""
    summary = render(
        "gate_summary.md.j2", tree=render_tree(result.tree), next_steps=result.next_steps
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


def render_summary_comment(result: GateResult, head_sha: str) -> str:
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
    )
    return truncate(body, COMMENT_MAX)
