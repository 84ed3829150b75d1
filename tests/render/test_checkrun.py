"""Rendering of one check's check-run output, and the conclusion mapping."""

from __future__ import annotations

import dataclasses

import pytest

from bot.gate.model import CheckState, ConnectorResult, RunStatus, Waiver
from bot.gate.waivers import apply_waivers_to_states
from bot.github.payloads import batch_annotations
from bot.render.checkrun import (
    annotation,
    finding_annotations,
    render_check_run,
)
from bot.render.conclusion import github_conclusion
from bot.render.text import SUMMARY_MAX, TRUNCATION_NOTE
from checks.model import CheckResult, Conclusion, Severity
from checks.scrub import scrub
from tests.gate.factories import TODAY, completed, finding

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
LEAK = dataclasses.replace(
    finding(), message=scrub(f'AWS key assigned: AWS_ACCESS_KEY_ID = "{AWS_KEY}"')
)
LOW = finding(severity=Severity.LOW, line=30, rule_id="B110")
HOSTILE = dataclasses.replace(
    finding(line=12, rule_id="x"),
    message="bad | pipe @octocat <!-- connector-gate:summary -->\nsecond",
)


def test_table_has_waive_line_for_blocking_findings_only() -> None:
    output = render_check_run(completed("secrets", LEAK, LOW))
    assert f"`/gate waive {LEAK.finding_id} <reason>`" in output.summary
    assert f"/gate waive {LOW.finding_id}" not in output.summary
    assert "not blocking" in output.summary
    assert "| ID | Severity | Location | Problem | To waive |" in output.summary
    assert "### ❌ Connector `acme-weather`: 1 blocking finding (1 high)" in output.summary
    assert "`connectors/acme-weather/client.py:6`" in output.summary
    assert output.title == "secrets check failing: 1 blocking finding (1 high)"


def test_scrubbed_secret_never_reappears() -> None:
    output = render_check_run(completed("secrets", LEAK))
    rendered = output.title + output.summary + output.text + repr(output.annotations)
    assert AWS_KEY not in rendered
    assert "[REDACTED]" in output.summary


def test_user_text_cannot_break_the_table_mention_or_fake_a_marker() -> None:
    output = render_check_run(completed("secrets", HOSTILE))
    row = next(line for line in output.summary.splitlines() if HOSTILE.finding_id in line)
    assert "bad \\| pipe @\u200boctocat &lt;!-- connector-gate:summary --&gt;<br>second" in row
    assert "<!-- connector-gate" not in output.summary


def test_waived_findings_listed_with_who_why_until() -> None:
    waiver = Waiver(LEAK.finding_id, "fixture key @team", "sam", TODAY)
    (state,) = apply_waivers_to_states([completed("secrets", LEAK)], [waiver], TODAY)
    output = render_check_run(state)
    assert "**Waived findings** (they no longer block):" in output.summary
    assert "sam: fixture key @\u200bteam (until 2025-03-10)" in output.summary
    assert f"/gate waive {LEAK.finding_id}" not in output.summary
    assert output.title.startswith("secrets check passed: every blocking finding waived")


def test_sections_per_connector_and_details_in_text() -> None:
    clean = CheckResult("secrets", Conclusion.SUCCESS, "clean", details="| tool | version |")
    state = CheckState(
        "secrets",
        RunStatus.COMPLETED,
        (*completed("secrets", LEAK).results, ConnectorResult("leaky-notes", clean)),
    )
    output = render_check_run(state)
    assert "Connector `acme-weather`" in output.summary
    assert "### ✅ Connector `leaky-notes`: clean" in output.summary
    assert "No findings." in output.summary
    assert "### leaky-notes\n\n| tool | version |" in output.text


def test_summary_is_truncated_with_a_note() -> None:
    many = [dataclasses.replace(finding(line=i), message="m" * 300) for i in range(1, 400)]
    output = render_check_run(completed("static", *many))
    assert len(output.summary) <= SUMMARY_MAX
    assert output.summary.endswith(TRUNCATION_NOTE)
    assert len(output.annotations) == 399
    assert [len(b) for b in batch_annotations(output.annotations)] == [50] * 7 + [49]


@pytest.mark.parametrize(
    ("found", "level"),
    [
        (finding(), "failure"),
        (dataclasses.replace(finding(), blocking=False), "warning"),
        (dataclasses.replace(finding(severity=Severity.LOW), blocking=False), "notice"),
        (dataclasses.replace(finding(), blocking=False, waived_by="sam: ok (until x)"), "notice"),
    ],
)
def test_annotation_level(found: object, level: str) -> None:
    assert annotation(found).level == level  # type: ignore[arg-type]


def test_annotation_fields() -> None:
    whole_file = dataclasses.replace(finding(line=0), end_line=0)
    note = annotation(whole_file)
    assert (note.path, note.start_line, note.end_line) == (whole_file.path, 1, 1)
    assert note.title == f"{whole_file.finding_id} AWSKeyDetector (high)"
    assert f"To waive: /gate waive {whole_file.finding_id} <reason>" in note.message
    assert finding_annotations([dataclasses.replace(LEAK, path="")]) == ()


@pytest.mark.parametrize(
    ("conclusion", "github"),
    [
        (Conclusion.SUCCESS, "success"),
        (Conclusion.FAILURE, "failure"),
        (Conclusion.ERROR, "failure"),
        (Conclusion.NEUTRAL, "neutral"),
        (Conclusion.SKIPPED, "skipped"),
    ],
)
def test_github_conclusion(conclusion: Conclusion, github: str) -> None:
    assert github_conclusion(conclusion) == github
