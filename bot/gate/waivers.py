"""Waivers: applying them to results, and how long a new one lasts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bot.gate.model import CheckState, ConnectorResult, Waiver
from checks.model import CheckResult, Conclusion, Finding
from checks.policy import count_by_severity
from checks.rules_model import WaiverRules


def waiver_note(waiver: Waiver) -> str:
    """What `Finding.waived_by` says for a waived finding: who, why, until."""
    return f"{waiver.waived_by}: {waiver.reason} (until {waiver.until.isoformat()})"


def active_waiver(finding: Finding, waivers: Iterable[Waiver], today: dt.date) -> Waiver | None:
    """The latest-lasting unexpired waiver covering `finding`, if any."""
    covering = [w for w in waivers if w.active_on(today) and w.covers(finding)]
    return max(covering, key=lambda w: w.until, default=None)


def _waive_finding(finding: Finding, waivers: Iterable[Waiver], today: dt.date) -> Finding:
    if not finding.blocking:
        return finding
    waiver = active_waiver(finding, waivers, today)
    if waiver is None:
        return finding
    return dataclasses.replace(finding, blocking=False, waived_by=waiver_note(waiver))


def waive_result(result: CheckResult, waivers: Iterable[Waiver], today: dt.date) -> CheckResult:
    """`result` with waived findings non-blocking; a failure only findings caused turns success.

    A failure with no blocking finding before waivers (a crashed test run...) stays a failure:
    there is nothing a waiver could have covered.
    """
    waivers = tuple(waivers)
    findings = tuple(_waive_finding(f, waivers, today) for f in result.findings)
    if findings == result.findings:
        return result
    still_blocking = [f for f in findings if f.blocking]
    waived = sum(1 for old, new in zip(result.findings, findings, strict=True) if old != new)
    if result.conclusion is not Conclusion.FAILURE:
        return dataclasses.replace(result, findings=findings)
    if still_blocking:
        summary = f"{len(still_blocking)} blocking ({count_by_severity(still_blocking)}), "
        summary += f"{waived} waived"
        return dataclasses.replace(result, findings=findings, summary=summary)
    summary = f"every blocking finding waived ({waived} waived)"
    conclusion = Conclusion.SUCCESS
    return dataclasses.replace(result, findings=findings, summary=summary, conclusion=conclusion)


def apply_waivers(
    results: Iterable[CheckResult], waivers: Iterable[Waiver], today: dt.date
) -> tuple[CheckResult, ...]:
    """Every result with its unexpired waivers applied; expired waivers simply stop counting."""
    waivers = tuple(waivers)
    return tuple(waive_result(result, waivers, today) for result in results)


def apply_waivers_to_states(
    states: Iterable[CheckState], waivers: Iterable[Waiver], today: dt.date
) -> tuple[CheckState, ...]:
    """`apply_waivers` over every connector's result of every check."""
    waivers = tuple(waivers)
    return tuple(
        dataclasses.replace(
            state,
            results=tuple(
                ConnectorResult(cr.connector, waive_result(cr.result, waivers, today))
                for cr in state.results
            ),
        )
        for state in states
    )


@dataclass(frozen=True, slots=True)
class WaiverPeriod:
    """How long a new waiver lasts."""

    until: dt.date
    """Last day it applies."""
    capped: bool
    """True when the requested date was beyond `max_days` and was brought back."""


def waiver_period(requested: dt.date | None, today: dt.date, rules: WaiverRules) -> WaiverPeriod:
    """`--until` or `default_days` from today, never beyond `max_days` from today."""
    latest = today + dt.timedelta(days=rules.max_days)
    wanted = requested or today + dt.timedelta(days=rules.default_days)
    if wanted > latest:
        return WaiverPeriod(until=latest, capped=True)
    return WaiverPeriod(until=wanted, capped=False)
