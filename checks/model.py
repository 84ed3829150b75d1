"""Typed results shared by every check: conclusions, severities, findings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Conclusion(StrEnum):
    """How a check ended, in the vocabulary GitHub check runs also use."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"  # the check could not decide (e.g. a tool could not reach its service)
    ERROR = "error"  # the check itself broke (tool crashed, timed out)
    SKIPPED = "skipped"  # nothing to check


class Severity(StrEnum):
    """Severity of a finding, ordered from least to most serious."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


#: Short prefix of a finding id per check, so `sec-3f9a2c` tells the reader where it came from.
FINDING_ID_PREFIX = {
    "manifest": "man",
    "secrets": "sec",
    "dependencies": "dep",
    "static": "sta",
    "tests": "tst",
    "performance": "prf",
}


def fingerprint(check: str, rule_id: str, path: str, *parts: str) -> str:
    """A stable hash naming a finding across runs.

    Callers pass identifying facts (rule, path, a hash of the normalised line...), never the
    secret or offending text itself, so the fingerprint can be stored and posted safely.
    """
    digest = hashlib.sha256()
    for piece in (check, rule_id, path, *parts):
        digest.update(piece.encode("utf-8", "surrogateescape"))
        digest.update(b"\x00")
    return digest.hexdigest()


def finding_id_for(check: str, fingerprint_hex: str) -> str:
    """The short id people type in `/gate waive <id>`: check prefix plus 6 hex digits."""
    return f"{FINDING_ID_PREFIX.get(check, check[:3])}-{fingerprint_hex[:6]}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a check found in a connector."""

    check: str
    """Name of the check that found it (`manifest`, `secrets`, ...)."""
    rule_id: str
    """Stable id of the rule that fired (`B501`, `AWSKeyDetector`, `manifest.egress-https`...)."""
    severity: Severity
    """How serious it is; the rules decide from which severity a finding fails the check."""
    path: str
    """Path relative to the repository root (or to the checked directory when run locally)."""
    start_line: int
    """First line (1-based); 0 when the finding concerns the whole file."""
    end_line: int
    """Last line (1-based, inclusive); equal to start_line for one-line findings."""
    message: str
    """What is wrong, scrubbed of secret values."""
    remediation: str
    """How to fix it."""
    fingerprint: str
    """Stable hash of identifying facts; never contains the secret or the offending text."""
    finding_id: str
    """Short id people can type (`sec-3f9a2c`), or an advisory id for vulnerabilities."""
    connector: str = ""
    """Name of the connector the finding belongs to."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same problem (CVE, GHSA...)."""
    blocking: bool = True
    """Whether the finding fails its check under the rules (below threshold or ignored: False)."""
    waived_by: str = ""
    """Who waived or ignored it, when it was waived (empty otherwise)."""

    @property
    def location(self) -> str:
        if self.start_line <= 0:
            return self.path
        if self.end_line > self.start_line:
            return f"{self.path}:{self.start_line}-{self.end_line}"
        return f"{self.path}:{self.start_line}"


def new_finding(
    *,
    check: str,
    rule_id: str,
    severity: Severity,
    path: str,
    line: int,
    message: str,
    remediation: str,
    identity: Iterable[str] = (),
    end_line: int | None = None,
    connector: str = "",
    finding_id: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Finding:
    """Build a finding whose fingerprint and id derive from (check, rule, path, identity)."""
    fp = fingerprint(check, rule_id, path, *identity)
    return Finding(
        check=check,
        rule_id=rule_id,
        severity=severity,
        path=path,
        start_line=line,
        end_line=end_line if end_line is not None else line,
        message=message,
        remediation=remediation,
        fingerprint=fp,
        finding_id=finding_id or finding_id_for(check, fp),
        connector=connector,
        aliases=aliases,
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check concluded for one connector."""

    check: str
    """Check name (`manifest`, `secrets`, `dependencies`, `static`, `tests`, `performance`)."""
    conclusion: Conclusion
    """The verdict; never SUCCESS when the tool could not run."""
    summary: str
    """One line for humans: why this conclusion."""
    findings: tuple[Finding, ...] = ()
    """Every finding, blocking or not."""
    details: str = ""
    """Longer markdown (tables of figures, tool versions); already scrubbed."""
    duration_s: float = 0.0
    """Wall time the check took."""
    cached: bool = False
    """True when served from the content cache."""
    data: dict[str, object] = field(default_factory=dict)
    """Machine-readable extras (test counts, k6 metrics...), JSON-serialisable."""

    @property
    def blocking_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocking)


@dataclass(frozen=True, slots=True)
class ConnectorReport:
    """All check results for one connector directory."""

    connector: str
    """Connector name (its directory name)."""
    path: str
    """Directory of the connector, relative to the repository root."""
    results: tuple[CheckResult, ...]
    """One result per check that ran, in check order."""

    @property
    def conclusion(self) -> Conclusion:
        return worst_conclusion(r.conclusion for r in self.results)


#: Ranking used to fold conclusions: any failure beats an error beats neutral...
_CONCLUSION_RANK = {
    Conclusion.SKIPPED: 0,
    Conclusion.SUCCESS: 1,
    Conclusion.NEUTRAL: 2,
    Conclusion.ERROR: 3,
    Conclusion.FAILURE: 4,
}


def worst_conclusion(conclusions: Iterable[Conclusion]) -> Conclusion:
    """Fold many conclusions into one; nothing evaluated is SKIPPED, never a silent success."""
    worst = Conclusion.SKIPPED
    for c in conclusions:
        if _CONCLUSION_RANK[c] > _CONCLUSION_RANK[worst]:
            worst = c
    return worst


@dataclass(frozen=True, slots=True)
class PerformanceBaseline:
    """Figures of the same connector measured on the default branch."""

    p95_ms: float
    """95th percentile latency then."""
    rps: float
    """Request rate then."""
    error_rate: float
    """Share of failed requests then."""
    measured_at: str
    """ISO 8601 time of the measurement."""
    commit: str
    """Commit sha it was measured on."""
