"""Check-run output of one check: title, a findings table per connector, annotations."""

from __future__ import annotations

from collections.abc import Iterable

from bot.gate.evaluate import check_outcome
from bot.gate.model import CheckState, ConnectorResult
from bot.github.models import Annotation, AnnotationLevel, CheckRunOutput
from bot.render.conclusion import github_conclusion
from bot.render.jinja import render
from bot.render.text import (
    ANNOTATION_MESSAGE_MAX,
    ANNOTATION_TITLE_MAX,
    SUMMARY_MAX,
    TEXT_MAX,
    TITLE_MAX,
    shorten,
    truncate,
)
from checks.model import Conclusion, Finding, Severity, worst_conclusion

_ICONS = {
    "success": "✅",
    "failure": "❌",
    "neutral": "⚠️",
    "skipped": "⏭️",
    "action_required": "⏳",
}


def annotation_level(finding: Finding) -> AnnotationLevel:
    """Blocking findings fail, waived ones are notices, the rest warn from medium upward."""
    if finding.blocking:
        return "failure"
    if finding.waived_by or not finding.severity.at_least(Severity.MEDIUM):
        return "notice"
    return "warning"


def annotation(finding: Finding) -> Annotation:
    """The annotation of one finding; whole-file findings point at line 1."""
    start = max(1, finding.start_line)
    end = max(start, finding.end_line)
    title = shorten(
        f"{finding.finding_id} {finding.rule_id} ({finding.severity})", ANNOTATION_TITLE_MAX
    )
    parts = [finding.message]
    if finding.remediation:
        parts.append(f"Fix: {finding.remediation}")
    if finding.blocking:
        parts.append(f"To waive: /gate waive {finding.finding_id} <reason>")
    elif finding.waived_by:
        parts.append(f"Waived: {finding.waived_by}")
    message = truncate("\n".join(parts), ANNOTATION_MESSAGE_MAX, "\n…")
    return Annotation(finding.path, start, end, annotation_level(finding), message, title)


def finding_annotations(findings: Iterable[Finding]) -> tuple[Annotation, ...]:
    """Annotations of findings that point into a file, blocking ones first."""
    ordered = sorted(
        findings, key=lambda f: (not f.blocking, -f.severity.rank, f.path, f.start_line)
    )
    return tuple(annotation(f) for f in ordered if f.path)


def _section(connector_result: ConnectorResult) -> dict[str, object]:
    result = connector_result.result
    ordered = sorted(result.findings, key=lambda f: (not f.blocking, -f.severity.rank, f.location))
    return {
        "connector": connector_result.connector,
        "icon": _ICONS[github_conclusion(result.conclusion)],
        "summary": result.summary,
        "open": [f for f in ordered if not f.waived_by],
        "waived": [f for f in ordered if f.waived_by],
    }


def _details(results: tuple[ConnectorResult, ...]) -> str:
    parts = [f"### {cr.connector}\n\n{cr.result.details}" for cr in results if cr.result.details]
    return "\n\n".join(parts)


def render_check_run(state: CheckState) -> CheckRunOutput:
    """Output of one completed check across its connectors (waivers already applied)."""
    title = shorten(check_outcome(state).reason, TITLE_MAX)
    summary = render("check_run.md.j2", sections=[_section(cr) for cr in state.results])
    findings = [f for cr in state.results for f in cr.result.findings]
    return CheckRunOutput(
        title=title,
        summary=truncate(summary, SUMMARY_MAX),
        text=truncate(_details(state.results), TEXT_MAX),
        annotations=finding_annotations(findings),
    )


def check_conclusion(state: CheckState) -> Conclusion:
    """The check run's conclusion: worst over connectors; no connector at all is SKIPPED."""
    return worst_conclusion(cr.result.conclusion for cr in state.results)
