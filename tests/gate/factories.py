"""Builders of gate inputs for the table-driven tests (plain data, no fakes of our code)."""

from __future__ import annotations

import datetime as dt

from bot.gate.model import (
    CheckState,
    ConnectorFacts,
    ConnectorResult,
    GateInput,
    PullRequestFacts,
    Review,
    ReviewState,
    RunStatus,
)
from checks.manifest_model import Auth, Manifest
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import result_from_findings
from checks.rules_model import ApprovalRule, Rules

TODAY = dt.date(2025, 3, 10)
HEAD = "a" * 40
OLD = "b" * 40
ORG = "acme"
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

SECURITY = ApprovalRule(name="security", teams=("security",))
OPS = ApprovalRule(name="ops", teams=("ops",))
MEMBERSHIPS = {
    "sam": frozenset({"security"}),
    "sue": frozenset({"security"}),
    "olga": frozenset({"ops"}),
    "both": frozenset({"security", "ops"}),
    "author": frozenset({"security", "ops"}),
    "random": frozenset({"frontend"}),
}


def rules(*approvals: ApprovalRule, **kwargs: object) -> Rules:
    return Rules(approvals=approvals, **kwargs)  # type: ignore[arg-type]


def manifest(
    name: str = "acme-weather",
    classification: str = "public",
    auth: str = "api_key",
    scopes: tuple[str, ...] = (),
    egress: tuple[str, ...] = ("api.weather.example",),
) -> Manifest:
    return Manifest(
        name=name,
        version="1.0.0",
        description="d",
        owners=("@acme/weather",),
        auth=Auth(type=auth, scopes=scopes),
        data_classification=classification,
        egress=egress,
        secrets=(),
        requirements="requirements.txt",
        runbook="RUNBOOK.md",
    )


def connector(
    head: Manifest | None = None, base: Manifest | None = None, name: str = ""
) -> ConnectorFacts:
    head = head if head is not None else manifest()
    return ConnectorFacts(name=name or head.name, manifest=head, base_manifest=base)


def unreadable(name: str = "broken") -> ConnectorFacts:
    return ConnectorFacts(name=name, manifest=None)


def pr(**kwargs: object) -> PullRequestFacts:
    values: dict[str, object] = {
        "org": ORG,
        "author": "author",
        "head_sha": HEAD,
        "changed_files": ("connectors/acme-weather/connector.yaml",),
        "labels": (),
        "connectors": (connector(base=manifest()),),
    }
    values.update(kwargs)
    return PullRequestFacts(**values)  # type: ignore[arg-type]


def finding(
    check: str = "secrets",
    severity: Severity = Severity.HIGH,
    path: str = "connectors/acme-weather/client.py",
    line: int = 6,
    rule_id: str = "AWSKeyDetector",
    connector_name: str = "acme-weather",
) -> Finding:
    return new_finding(
        check=check,
        rule_id=rule_id,
        severity=severity,
        path=path,
        line=line,
        message="AWS access key in source",
        remediation="Read it from the environment",
        identity=(str(line),),
        connector=connector_name,
    )


def completed(check: str, *findings: Finding, connector_name: str = "acme-weather") -> CheckState:
    result = result_from_findings(check, findings, Rules(), clean_summary="clean", today=TODAY)
    return CheckState(check, RunStatus.COMPLETED, (ConnectorResult(connector_name, result),))


def concluded(check: str, conclusion: Conclusion, summary: str = "tool broke") -> CheckState:
    result = CheckResult(check=check, conclusion=conclusion, summary=summary)
    return CheckState(check, RunStatus.COMPLETED, (ConnectorResult("acme-weather", result),))


def all_passing() -> tuple[CheckState, ...]:
    return tuple(completed(name) for name in ("manifest", "secrets", "tests"))


def approve(user: str, commit: str = HEAD, minutes: int = 0) -> Review:
    return Review(user, ReviewState.APPROVED, commit, T0 + dt.timedelta(minutes=minutes))


def review(user: str, state: ReviewState, minutes: int = 0, commit: str = HEAD) -> Review:
    return Review(user, state, commit, T0 + dt.timedelta(minutes=minutes))


def gate_input(**kwargs: object) -> GateInput:
    values: dict[str, object] = {
        "rules": rules(SECURITY),
        "pr": pr(),
        "checks": all_passing(),
        "today": TODAY,
        "reviews": (),
        "memberships": MEMBERSHIPS,
        "waivers": (),
    }
    values.update(kwargs)
    return GateInput(**values)  # type: ignore[arg-type]
