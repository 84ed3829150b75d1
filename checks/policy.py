"""Pure policy shared by the checks: which findings block, and the resulting conclusion."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from fnmatch import fnmatch

from checks.model import CheckResult, Conclusion, Finding, Severity
from checks.rules_model import IgnoreEntry, Rules


def _ignore_matches(entry: IgnoreEntry, finding: Finding) -> bool:
    if entry.finding_id and entry.finding_id not in (finding.finding_id, *finding.aliases):
        return False
    if entry.rule_id and entry.rule_id != finding.rule_id:
        return False
    return not entry.paths or any(fnmatch(finding.path, glob) for glob in entry.paths)


def active_ignore(rules: Rules, finding: Finding, today: dt.date) -> IgnoreEntry | None:
    """The unexpired ignore entry covering `finding`, if any (expired ones stop by themselves)."""
    for entry in rules.ignore:
        if entry.expires >= today and _ignore_matches(entry, finding):
            return entry
    return None


def mark_blocking(
    findings: Iterable[Finding], rules: Rules, today: dt.date | None = None
) -> tuple[Finding, ...]:
    """Set `blocking` on each finding from the severity threshold and the ignore list."""
    today = today or dt.date.today()
    marked = []
    for finding in findings:
        entry = active_ignore(rules, finding, today)
        if entry is not None:
            note = f"rules file: {entry.reason} (until {entry.expires.isoformat()})"
            marked.append(dataclasses.replace(finding, blocking=False, waived_by=note))
        else:
            blocking = finding.severity.at_least(rules.fail_on)
            marked.append(dataclasses.replace(finding, blocking=blocking))
    return tuple(marked)


def count_by_severity(findings: Iterable[Finding]) -> str:
    """`1 high, 2 medium`, most severe first."""
    counts = Counter(f.severity for f in findings)
    return ", ".join(f"{counts[s]} {s}" for s in reversed(Severity) if counts[s])


def result_from_findings(
    check: str,
    findings: Iterable[Finding],
    rules: Rules,
    *,
    clean_summary: str,
    details: str = "",
    data: Mapping[str, object] | None = None,
    today: dt.date | None = None,
) -> CheckResult:
    """Conclude a check that ran to completion: FAILURE when any finding blocks."""
    marked = mark_blocking(findings, rules, today)
    blocking = [f for f in marked if f.blocking]
    if blocking:
        plural = "s" if len(blocking) != 1 else ""
        summary = f"{len(blocking)} blocking finding{plural} ({count_by_severity(blocking)})"
        conclusion = Conclusion.FAILURE
    else:
        extra = len(marked)
        summary = clean_summary if not extra else f"{clean_summary}; {extra} non-blocking"
        conclusion = Conclusion.SUCCESS
    return CheckResult(
        check=check,
        conclusion=conclusion,
        summary=summary,
        findings=marked,
        details=details,
        data=dict(data or {}),
    )


def could_not_run(check: str, conclusion: Conclusion, reason: str) -> CheckResult:
    """A check whose tool could not run: never SUCCESS, and the reason is the summary."""
    assert conclusion in (Conclusion.NEUTRAL, Conclusion.ERROR, Conclusion.FAILURE)
    return CheckResult(check=check, conclusion=conclusion, summary=reason)
