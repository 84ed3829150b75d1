"""The four report formats render the same facts; SARIF validates against the official schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from checks.model import CheckResult, Conclusion, ConnectorReport, Severity, new_finding
from checks.report import FORMATS, render_json, render_markdown, render_sarif, render_text
from checks.serialize import report_from_dict

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _report() -> ConnectorReport:
    blocking = new_finding(
        check="static",
        rule_id="B501",
        severity=Severity.HIGH,
        path="connectors/leaky/client.py",
        line=20,
        message="requests call with verify=False | disables TLS",
        remediation="Remove verify=False.",
        identity=("abc",),
        connector="leaky",
    )
    whole_file = new_finding(
        check="manifest",
        rule_id="manifest.runbook-missing",
        severity=Severity.LOW,
        path="connectors/leaky/connector.yaml",
        line=0,
        message="no runbook <b>@team</b>",
        remediation="Write RUNBOOK.md.",
        connector="leaky",
    )
    return ConnectorReport(
        connector="leaky",
        path="connectors/leaky",
        results=(
            CheckResult("static", Conclusion.FAILURE, "1 blocking finding", (blocking,)),
            CheckResult(
                "manifest",
                Conclusion.SUCCESS,
                "valid",
                (dataclasses.replace(whole_file, blocking=False),),
            ),
            CheckResult("dependencies", Conclusion.NEUTRAL, "could not reach OSV"),
        ),
    )


def test_sarif_is_valid_against_the_official_schema() -> None:
    schema = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text())
    document = json.loads(render_sarif([_report()]))
    jsonschema.validate(document, schema)
    static_run = next(r for r in document["runs"] if r["tool"]["driver"]["name"].endswith("static"))
    result = static_run["results"][0]
    assert result["ruleId"] == "B501"
    assert result["level"] == "error"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 20, "endLine": 20}


def test_sarif_reports_a_check_that_could_not_run_as_unsuccessful_execution() -> None:
    document = json.loads(render_sarif([_report()]))
    deps = next(r for r in document["runs"] if r["tool"]["driver"]["name"].endswith("dependencies"))
    assert deps["invocations"][0]["executionSuccessful"] is False


def test_json_round_trips_through_the_serializer() -> None:
    document = json.loads(render_json([_report()]))
    assert document["conclusion"] == "failure"
    assert report_from_dict(document["connectors"][0]) == _report()


def test_markdown_table_cells_cannot_break_the_table_or_mention_people() -> None:
    text = render_markdown([_report()])
    assert "verify=False \\| disables TLS" in text
    assert "&lt;b&gt;" in text
    assert "@team" not in text


@pytest.mark.parametrize("colour", [False, True])
def test_text_shows_id_location_and_fix(colour: bool) -> None:
    text = render_text([_report()], colour=colour)
    finding = _report().results[0].findings[0]
    assert finding.finding_id in text
    assert "connectors/leaky/client.py:20" in text
    assert "fix: Remove verify=False." in text
    assert ("\x1b[" in text) is colour


def test_every_format_is_registered() -> None:
    assert set(FORMATS) == {"text", "json", "markdown", "sarif"}
