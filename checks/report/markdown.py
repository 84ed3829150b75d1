"""Markdown report, for CI job summaries and pasting into a PR."""

from __future__ import annotations

from collections.abc import Sequence

from checks.model import CheckResult, Conclusion, ConnectorReport

_ICON = {
    Conclusion.SUCCESS: "✅",
    Conclusion.FAILURE: "❌",
    Conclusion.NEUTRAL: "⚠️",
    Conclusion.ERROR: "💥",
    Conclusion.SKIPPED: "⏭️",
}


def cell(text: str) -> str:
    """Text made safe for a table cell: no pipes, no newlines, no HTML, no @mentions."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("@", "@\u200b")
    )


def _findings_table(result: CheckResult) -> list[str]:
    rows = [
        "| id | severity | location | problem | fix |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in result.findings:
        severity = f.severity.value if f.blocking else f"{f.severity.value} (not blocking)"
        rows.append(
            f"| `{cell(f.finding_id)}` | {severity} | `{cell(f.location)}` "
            f"| {cell(f.message)} | {cell(f.remediation)} |"
        )
    return rows


def render_markdown(reports: Sequence[ConnectorReport]) -> str:
    out = ["# connector-gate report", ""]
    for report in reports:
        out += [f"## {_ICON[report.conclusion]} `{cell(report.connector)}` ({report.path})", ""]
        out += ["| check | result | summary |", "| --- | --- | --- |"]
        for result in report.results:
            out.append(
                f"| {result.check} | {_ICON[result.conclusion]} {result.conclusion.value} "
                f"| {cell(result.summary)} |"
            )
        out.append("")
        for result in report.results:
            if result.findings:
                out += [f"### {result.check}", "", *_findings_table(result), ""]
            if result.details:
                out += [f"#### {result.check} details", "", result.details, ""]
    return "\n".join(out) + "\n"
