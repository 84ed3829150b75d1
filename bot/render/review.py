"""Inline review comments: which findings get one, and what it says."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from bot.render.diff import right_side_lines
from bot.render.markers import finding_marker
from bot.render.text import COMMENT_MAX, code, neutralise, truncate
from checks.model import Finding

#: Inline comments posted per run at most; the rest stay annotations.
MAX_INLINE_COMMENTS = 20


@dataclass(frozen=True, slots=True)
class InlineComment:
    """A review comment to post on one line of the diff."""

    path: str
    """Repository-relative path."""
    line: int
    """New-file line number (side RIGHT)."""
    body: str
    """Markdown body carrying the finding's marker."""
    fingerprint: str
    """Fingerprint of the finding, so it is never commented twice."""
    side: str = "RIGHT"
    """Always the new version of the file."""


def render_finding_comment(finding: Finding, waiver_rule: str = "security") -> str:
    """Body of the review comment for one finding, starting with its hidden marker."""
    lines = [
        finding_marker(finding.fingerprint),
        f"**{_icon(finding)} {finding.severity} · {neutralise(finding.rule_id)}** "
        f"({code(finding.finding_id)}, {finding.check} check)",
        "",
        neutralise(finding.message),
    ]
    if finding.remediation:
        lines += ["", f"**How to fix:** {neutralise(finding.remediation)}"]
    if finding.blocking:
        waive = code(f"/gate waive {finding.finding_id} <reason>")
        lines += [
            "",
            f"To accept it instead, a member of the {waiver_rule} approvers comments {waive}.",
        ]
    return truncate("\n".join(lines) + "\n", COMMENT_MAX)


def _icon(finding: Finding) -> str:
    return "❌" if finding.blocking else "⚠️"


def commentable_line(finding: Finding, lines: frozenset[int]) -> int | None:
    """First line of the finding's range that the diff shows; None when outside the diff."""
    start = max(1, finding.start_line)
    end = max(start, finding.end_line)
    return next((n for n in range(start, end + 1) if n in lines), None)


def select_inline_comments(
    findings: Iterable[Finding],
    patches: Mapping[str, str | None],
    already_commented: Collection[str] = (),
    waiver_rules: Mapping[str, str] | None = None,
) -> tuple[InlineComment, ...]:
    """Blocking findings on lines of the diff, not yet commented, at most MAX_INLINE_COMMENTS.

    `patches` maps each changed file to its unified diff (`patch` of the PR files API).
    Findings outside the diff, on whole files (line 0) or already commented stay annotations.
    """
    waiver_rules = waiver_rules or {}
    seen = set(already_commented)
    chosen: list[InlineComment] = []
    for finding in sorted(findings, key=lambda f: (-f.severity.rank, f.path, f.start_line)):
        line = _line_for(finding, patches, seen)
        if line is None:
            continue
        seen.add(finding.fingerprint)
        body = render_finding_comment(finding, waiver_rules.get(finding.check, "security"))
        chosen.append(InlineComment(finding.path, line, body, finding.fingerprint))
    return tuple(chosen[:MAX_INLINE_COMMENTS])


def _line_for(finding: Finding, patches: Mapping[str, str | None], seen: set[str]) -> int | None:
    if not finding.blocking or finding.start_line <= 0 or finding.fingerprint in seen:
        return None
    if finding.path not in patches:
        return None
    return commentable_line(finding, right_side_lines(patches[finding.path]))
