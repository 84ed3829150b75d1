"""JSON-ready dicts to and from the result dataclasses (reports, cache, storage)."""

from __future__ import annotations

from typing import Any

from checks.model import CheckResult, Conclusion, ConnectorReport, Finding, Severity

SCHEMA_VERSION = 1


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.finding_id,
        "check": finding.check,
        "rule_id": finding.rule_id,
        "severity": str(finding.severity),
        "path": finding.path,
        "start_line": finding.start_line,
        "end_line": finding.end_line,
        "message": finding.message,
        "remediation": finding.remediation,
        "fingerprint": finding.fingerprint,
        "connector": finding.connector,
        "aliases": list(finding.aliases),
        "blocking": finding.blocking,
        "waived_by": finding.waived_by,
    }


def finding_from_dict(data: dict[str, Any]) -> Finding:
    return Finding(
        check=data["check"],
        rule_id=data["rule_id"],
        severity=Severity(data["severity"]),
        path=data["path"],
        start_line=int(data["start_line"]),
        end_line=int(data["end_line"]),
        message=data["message"],
        remediation=data["remediation"],
        fingerprint=data["fingerprint"],
        finding_id=data["id"],
        connector=data.get("connector", ""),
        aliases=tuple(data.get("aliases", ())),
        blocking=bool(data.get("blocking", True)),
        waived_by=data.get("waived_by", ""),
    )


def result_to_dict(result: CheckResult) -> dict[str, Any]:
    return {
        "check": result.check,
        "conclusion": str(result.conclusion),
        "summary": result.summary,
        "details": result.details,
        "duration_s": round(result.duration_s, 3),
        "cached": result.cached,
        "data": result.data,
        "findings": [finding_to_dict(f) for f in result.findings],
    }


def result_from_dict(data: dict[str, Any]) -> CheckResult:
    return CheckResult(
        check=data["check"],
        conclusion=Conclusion(data["conclusion"]),
        summary=data["summary"],
        findings=tuple(finding_from_dict(f) for f in data.get("findings", ())),
        details=data.get("details", ""),
        duration_s=float(data.get("duration_s", 0.0)),
        cached=bool(data.get("cached", False)),
        data=dict(data.get("data", {})),
    )


def report_to_dict(report: ConnectorReport) -> dict[str, Any]:
    return {
        "connector": report.connector,
        "path": report.path,
        "conclusion": str(report.conclusion),
        "results": [result_to_dict(r) for r in report.results],
    }


def report_from_dict(data: dict[str, Any]) -> ConnectorReport:
    return ConnectorReport(
        connector=data["connector"],
        path=data["path"],
        results=tuple(result_from_dict(r) for r in data["results"]),
    )
