"""SARIF 2.1.0 output, for GitHub code scanning uploads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from checks.model import CheckResult, ConnectorReport, Finding, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/connector-gate/connector-gate"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

#: GitHub code scanning reads `security-severity` (0-10) to rank alerts.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}


def _rule(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.rule_id,
        "name": finding.rule_id.replace(".", "-").replace(" ", ""),
        "shortDescription": {"text": finding.rule_id},
        "help": {"text": finding.remediation or finding.message},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[finding.severity],
            "tags": ["security", finding.check],
        },
    }


def _location(finding: Finding) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": finding.path}}
    if finding.start_line > 0:
        physical["region"] = {
            "startLine": finding.start_line,
            "endLine": max(finding.end_line, finding.start_line),
        }
    return {"physicalLocation": physical}


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    text = finding.message
    if finding.remediation:
        text += f" Fix: {finding.remediation}"
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity] if finding.blocking else "note",
        "message": {"text": text},
        "locations": [_location(finding)],
        "partialFingerprints": {"connectorGate/v1": finding.fingerprint},
        "properties": {
            "findingId": finding.finding_id,
            "severity": finding.severity.value,
            "connector": finding.connector,
            "blocking": finding.blocking,
        },
    }
    if finding.waived_by:
        result["suppressions"] = [{"kind": "external", "justification": finding.waived_by}]
    return result


def _run(check: str, results: Sequence[CheckResult]) -> dict[str, Any]:
    rules: dict[str, int] = {}
    rule_list: list[dict[str, Any]] = []
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for result in results:
        for finding in result.findings:
            if finding.rule_id not in rules:
                rules[finding.rule_id] = len(rule_list)
                rule_list.append(_rule(finding))
            sarif_results.append(_result(finding, rules[finding.rule_id]))
        if result.conclusion.value in ("error", "neutral"):
            notifications.append({"level": "error", "message": {"text": result.summary}})
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": f"connector-gate/{check}",
                "informationUri": INFORMATION_URI,
                "rules": rule_list,
            }
        },
        "automationDetails": {"id": f"connector-gate/{check}/"},
        "results": sarif_results,
    }
    run["invocations"] = [
        {"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}
    ]
    return run


def render_sarif(reports: Sequence[ConnectorReport]) -> str:
    by_check: dict[str, list[CheckResult]] = {}
    for report in reports:
        for result in report.results:
            by_check.setdefault(result.check, []).append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [_run(check, results) for check, results in by_check.items()],
    }
    return json.dumps(document, indent=2) + "\n"
