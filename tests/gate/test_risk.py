"""Table-driven tests of the risk score (the table in docs/gate.md)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.gate.risk import egress_host, is_privileged_scope, risk_score
from checks.model import Severity
from tests.gate.factories import connector, finding, manifest, unreadable

BASE = manifest()
WAIVED_HIGH = dataclasses.replace(finding(), blocking=False, waived_by="sam: ok (until 2025-04-01)")
LOW = dataclasses.replace(finding(severity=Severity.LOW), blocking=False)

CASES = [
    ("public api_key, unchanged egress", [connector(manifest(), BASE)], [], 1),
    ("no auth", [connector(manifest(auth="none"), BASE)], [], 0),
    ("internal", [connector(manifest(classification="internal"), BASE)], [], 2),
    ("confidential", [connector(manifest(classification="confidential"), BASE)], [], 4),
    ("restricted", [connector(manifest(classification="restricted"), BASE)], [], 6),
    ("basic auth", [connector(manifest(auth="basic"), BASE)], [], 2),
    (
        "oauth2 read scope",
        [connector(manifest(auth="oauth2", scopes=("notes:read",)), BASE)],
        [],
        1,
    ),
    (
        "oauth2 admin and write scopes",
        [
            connector(
                manifest(auth="oauth2", scopes=("notes:read", "notes:admin", "Files.ReadWrite")),
                BASE,
            )
        ],
        [],
        3,
    ),
    ("new connector: every host is new", [connector(manifest())], [], 3),
    (
        "one new host, same host with scheme is not new",
        [connector(manifest(egress=("https://api.weather.example/v1", "cdn.example")), BASE)],
        [],
        3,
    ),
    (
        "plain http egress",
        [connector(manifest(egress=("http://api.weather.example",)), BASE)],
        [],
        2,
    ),
    ("unreadable manifest scores as restricted", [unreadable()], [], 5),
    ("blocking high finding", [connector(manifest(), BASE)], [finding()], 3),
    (
        "blocking critical finding",
        [connector(manifest(), BASE)],
        [finding(severity=Severity.CRITICAL)],
        3,
    ),
    (
        "blocking medium finding",
        [connector(manifest(), BASE)],
        [finding(severity=Severity.MEDIUM)],
        2,
    ),
    ("waived high finding", [connector(manifest(), BASE)], [WAIVED_HIGH], 2),
    ("non-blocking low finding", [connector(manifest(), BASE)], [LOW], 1),
    (
        "riskiest connector counts, not the sum",
        [
            connector(manifest(), BASE),
            connector(manifest(name="vault", classification="restricted"), BASE),
        ],
        [],
        6,
    ),
    (
        "finding of no changed connector adds to the total",
        [connector(manifest(), BASE)],
        [finding(connector_name="")],
        3,
    ),
    ("nothing changed", [], [], 0),
]


@pytest.mark.parametrize(
    ("name", "connectors", "findings", "score"), CASES, ids=[c[0] for c in CASES]
)
def test_risk_score(name: str, connectors: list, findings: list, score: int) -> None:  # type: ignore[type-arg]
    risk = risk_score(connectors, findings)
    assert risk.total == score
    assert sum(f.points for f in risk.factors) == score


def test_factors_explain_the_score() -> None:
    risk = risk_score([connector(manifest(classification="restricted"))], [finding()])
    reasons = [(f.points, f.reason) for f in risk.factors]
    assert (5, "restricted data") in reasons
    assert (2, "new egress host api.weather.example") in reasons
    assert (2, f"blocking high finding {finding().finding_id}") in reasons


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("api.example.com", "api.example.com"),
        ("https://API.example.com/v1?x=1", "api.example.com"),
        ("api.example.com:8443", "api.example.com"),
        ("api.example.com/path", "api.example.com"),
        ("http://user@api.example.com:80/", "api.example.com"),
    ],
)
def test_egress_host(entry: str, host: str) -> None:
    assert egress_host(entry) == host


@pytest.mark.parametrize(
    ("scope", "privileged"),
    [
        ("notes:read", False),
        ("notes:admin", True),
        ("repo:write", True),
        ("*", True),
        ("Files.ReadWrite.All", True),
        ("users.delete", True),
        ("profile", False),
    ],
)
def test_privileged_scopes(scope: str, privileged: bool) -> None:
    assert is_privileged_scope(scope) is privileged
