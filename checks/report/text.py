"""The terminal report: one block per connector, one line per check, findings beneath."""

from __future__ import annotations

from collections.abc import Sequence

from checks.model import CheckResult, Conclusion, ConnectorReport, Finding, worst_conclusion

_MARK = {
    Conclusion.SUCCESS: ("PASS", "32"),
    Conclusion.FAILURE: ("FAIL", "31"),
    Conclusion.NEUTRAL: ("NEUTRAL", "33"),
    Conclusion.ERROR: ("ERROR", "35"),
    Conclusion.SKIPPED: ("SKIP", "2"),
}


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _finding_lines(finding: Finding, colour: bool) -> list[str]:
    tag = f"{finding.finding_id} {finding.severity.upper()}"
    if not finding.blocking:
        tag += " (waived)" if finding.waived_by else " (non-blocking)"
    head = f"    {_paint(tag, '1', colour)}  {finding.location}  [{finding.rule_id}]"
    lines = [head, f"      {finding.message}"]
    if finding.remediation:
        lines.append(f"      fix: {finding.remediation}")
    if finding.waived_by:
        lines.append(f"      waived: {finding.waived_by}")
    return lines


def _result_lines(result: CheckResult, colour: bool) -> list[str]:
    label, code = _MARK[result.conclusion]
    cached = " (cached)" if result.cached else ""
    timing = f" {result.duration_s:.1f}s" if result.duration_s >= 0.05 else ""
    lines = [f"  {_paint(f'{label:<7}', code, colour)} {result.check:<13}{result.summary}"]
    lines[0] += _paint(f"{timing}{cached}", "2", colour)
    for finding in result.findings:
        lines.extend(_finding_lines(finding, colour))
    return lines


def render_text(reports: Sequence[ConnectorReport], *, colour: bool = False) -> str:
    out: list[str] = []
    for report in reports:
        label, code = _MARK[report.conclusion]
        out.append(_paint(f"{report.connector} ({report.path}): {label}", code, colour))
        for result in report.results:
            out.extend(_result_lines(result, colour))
        out.append("")
    overall = worst_conclusion(r.conclusion for r in reports)
    failing = sum(1 for r in reports for c in r.results if c.conclusion != Conclusion.SUCCESS)
    failing -= sum(1 for r in reports for c in r.results if c.conclusion == Conclusion.SKIPPED)
    verdict = "all checks passed" if failing == 0 else f"{failing} check(s) did not pass"
    out.append(_paint(f"{len(reports)} connector(s): {verdict}", _MARK[overall][1], colour))
    return "\n".join(out) + "\n"
