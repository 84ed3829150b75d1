"""Tests of applying waivers and of how long a new waiver lasts."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bot.gate.model import Waiver
from bot.gate.waivers import apply_waivers, waiver_period
from checks.model import CheckResult, Conclusion, Finding
from checks.policy import result_from_findings
from checks.rules_model import Rules, WaiverRules
from tests.gate.factories import TODAY, finding

LEAK = finding()
OTHER = finding(line=9)
DAY = dt.timedelta(days=1)


def failing(*findings: object) -> CheckResult:
    return result_from_findings("secrets", findings, Rules(), clean_summary="clean", today=TODAY)  # type: ignore[arg-type]


def waiver(finding_id: str = LEAK.finding_id, until: dt.date = TODAY) -> Waiver:
    return Waiver(finding_id, "fixture only", "sam", until)


CASES = [
    ("active waiver clears the only blocking finding", [LEAK], [waiver()], Conclusion.SUCCESS, 0),
    ("last day still counts", [LEAK], [waiver(until=TODAY)], Conclusion.SUCCESS, 0),
    ("expired the day before", [LEAK], [waiver(until=TODAY - DAY)], Conclusion.FAILURE, 1),
    ("other finding still blocks", [LEAK, OTHER], [waiver()], Conclusion.FAILURE, 1),
    ("id match ignores case", [LEAK], [waiver(LEAK.finding_id.upper())], Conclusion.SUCCESS, 0),
    ("unrelated waiver changes nothing", [LEAK], [waiver("sec-000000")], Conclusion.FAILURE, 1),
    ("no waivers", [LEAK], [], Conclusion.FAILURE, 1),
]


@pytest.mark.parametrize(
    ("name", "findings", "waivers", "conclusion", "blocking"), CASES, ids=[c[0] for c in CASES]
)
def test_apply_waivers(
    name: str, findings: list[Finding], waivers: list[Waiver], conclusion: Conclusion, blocking: int
) -> None:
    (result,) = apply_waivers([failing(*findings)], waivers, TODAY)
    assert result.conclusion is conclusion
    assert len(result.blocking_findings) == blocking


def test_waived_finding_says_who_why_until() -> None:
    (result,) = apply_waivers([failing(LEAK)], [waiver(until=TODAY + DAY)], TODAY)
    assert result.findings[0].waived_by == "sam: fixture only (until 2025-03-11)"
    assert result.summary == "every blocking finding waived (1 waived)"


def test_alias_is_waivable() -> None:
    vuln = dataclasses.replace(finding(check="dependencies"), aliases=("CVE-2018-18074",))
    (result,) = apply_waivers([failing(vuln)], [waiver("cve-2018-18074")], TODAY)
    assert not result.blocking_findings


def test_failure_without_findings_is_not_waivable() -> None:
    broken = CheckResult("tests", Conclusion.FAILURE, "pytest exited 2")
    assert apply_waivers([broken], [waiver()], TODAY) == (broken,)


@pytest.mark.parametrize(
    ("requested", "until", "capped"),
    [
        (None, TODAY + 30 * DAY, False),
        (TODAY + 10 * DAY, TODAY + 10 * DAY, False),
        (TODAY + 90 * DAY, TODAY + 90 * DAY, False),
        (TODAY + 91 * DAY, TODAY + 90 * DAY, True),
    ],
)
def test_waiver_period(requested: dt.date | None, until: dt.date, capped: bool) -> None:
    period = waiver_period(requested, TODAY, WaiverRules())
    assert (period.until, period.capped) == (until, capped)


def test_default_beyond_max_is_capped() -> None:
    period = waiver_period(None, TODAY, WaiverRules(default_days=120, max_days=60))
    assert period == type(period)(TODAY + 60 * DAY, True)
