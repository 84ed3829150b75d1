"""The pull request's risk score, from manifests and findings (see docs/gate.md)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from bot.gate.model import ConnectorFacts, RiskFactor, RiskScore
from checks.manifest_model import Manifest
from checks.model import Finding, Severity

#: Points per data classification; an unknown one scores as the worst.
CLASSIFICATION_POINTS = {"public": 0, "internal": 1, "confidential": 3, "restricted": 5}
#: Points per auth type before scopes; an unknown one scores as `basic`.
AUTH_POINTS = {"none": 0, "api_key": 1, "basic": 2, "oauth2": 1}
#: Words that make a scope privileged (one point each such scope, oauth2 only).
PRIVILEGED_SCOPE_WORDS = ("write", "admin", "delete", "manage", "owner", "full", "root", "sudo")
NEW_EGRESS_POINTS = 2
PLAIN_HTTP_POINTS = 1
UNREADABLE_MANIFEST_POINTS = CLASSIFICATION_POINTS["restricted"]
BLOCKING_SEVERE_POINTS = 2
BLOCKING_MEDIUM_POINTS = 1
WAIVED_SEVERE_POINTS = 1


def egress_host(entry: str) -> str:
    """Host of an egress entry (`api.x.com`, `https://api.x.com/v1`, `api.x.com:443`)."""
    entry = entry.strip()
    if "://" in entry:
        return (urlsplit(entry).hostname or "").lower()
    return entry.split("/", 1)[0].rsplit(":", 1)[0].lower()


def is_privileged_scope(scope: str) -> bool:
    """Whether a scope grants more than reading (write, admin, delete... or a bare `*`)."""
    lowered = scope.lower()
    return lowered.strip() == "*" or any(word in lowered for word in PRIVILEGED_SCOPE_WORDS)


def manifest_factors(manifest: Manifest, base: Manifest | None) -> list[RiskFactor]:
    """Points from what the manifest declares, compared with its base version."""
    name = manifest.name
    factors = [_classification_factor(manifest, name), _auth_factor(manifest, name)]
    factors += [
        RiskFactor(PLAIN_HTTP_POINTS, f"egress over plain http: {egress_host(entry)}", name)
        for entry in manifest.egress
        if entry.strip().lower().startswith("http://")
    ]
    base_hosts = {egress_host(entry) for entry in base.egress} if base else set()
    new_hosts = sorted({egress_host(entry) for entry in manifest.egress} - base_hosts)
    factors += [RiskFactor(NEW_EGRESS_POINTS, f"new egress host {h}", name) for h in new_hosts]
    return [f for f in factors if f.points]


def _classification_factor(manifest: Manifest, name: str) -> RiskFactor:
    level = manifest.data_classification
    points = CLASSIFICATION_POINTS.get(level, UNREADABLE_MANIFEST_POINTS)
    return RiskFactor(points, f"{level} data", name)


def _auth_factor(manifest: Manifest, name: str) -> RiskFactor:
    auth = manifest.auth
    points = AUTH_POINTS.get(auth.type, AUTH_POINTS["basic"])
    privileged = [s for s in auth.scopes if is_privileged_scope(s)] if auth.type == "oauth2" else []
    detail = f" with privileged scopes {', '.join(privileged)}" if privileged else ""
    return RiskFactor(points + len(privileged), f"{auth.type} auth{detail}", name)


def finding_factor(finding: Finding) -> RiskFactor | None:
    """Points for one finding: blocking high/critical 2, blocking medium 1, waived severe 1."""
    severe = finding.severity.at_least(Severity.HIGH)
    if finding.blocking and severe:
        points = BLOCKING_SEVERE_POINTS
    elif finding.blocking and finding.severity is Severity.MEDIUM:
        points = BLOCKING_MEDIUM_POINTS
    elif finding.waived_by and severe:
        points = WAIVED_SEVERE_POINTS
    else:
        return None
    state = "blocking" if finding.blocking else "waived"
    reason = f"{state} {finding.severity} finding {finding.finding_id}"
    return RiskFactor(points, reason, finding.connector)


def connector_factors(connector: ConnectorFacts) -> list[RiskFactor]:
    """Points from one connector's manifest; an unreadable manifest scores as restricted."""
    if connector.manifest is None:
        reason = "manifest unreadable, scored as restricted data"
        return [RiskFactor(UNREADABLE_MANIFEST_POINTS, reason, connector.name)]
    return manifest_factors(connector.manifest, connector.base_manifest)


def risk_score(connectors: Iterable[ConnectorFacts], findings: Iterable[Finding]) -> RiskScore:
    """Score of the riskiest connector plus findings attributed to no connector.

    The riskiest connector, not the sum, so bundling several harmless connectors in one pull
    request does not call for more approvals than each would alone.
    """
    per_connector: dict[str, list[RiskFactor]] = {c.name: connector_factors(c) for c in connectors}
    loose: list[RiskFactor] = []
    for factor in filter(None, map(finding_factor, findings)):
        per_connector.get(factor.connector, loose).append(factor)
    worst = max(per_connector.values(), key=_points, default=[])
    factors = (*worst, *loose)
    return RiskScore(total=_points(factors), factors=factors)


def _points(factors: Iterable[RiskFactor]) -> int:
    return sum(f.points for f in factors)
