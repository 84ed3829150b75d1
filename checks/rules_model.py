"""Repository rules (`.github/connector-gate.yml`) as typed, frozen data.

The parser lives in `checks.rules`; the approval part is evaluated by `bot.gate`.
Every field has a default, so an absent rules file means `Rules()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from checks.model import Severity

RULES_PATH = ".github/connector-gate.yml"

DEFAULT_ALLOWED_SCOPES: Mapping[str, tuple[str, ...]] = {}
"""No allowlist by default: every declared scope is reported until the rules allow it."""


@dataclass(frozen=True, slots=True)
class ManifestRules:
    """What the manifest check enforces."""

    allowed_scopes: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_ALLOWED_SCOPES)
    )
    """Per auth type, the scopes a connector may request; `*` in a list allows any scope."""
    max_rotation_days: int = 90
    """Longest rotation period a secret may declare."""
    denied_egress: tuple[str, ...] = ()
    """Host globs no connector may call (e.g. `*.internal`)."""


@dataclass(frozen=True, slots=True)
class StaticRules:
    """Thresholds for bandit and friends."""

    severity: Severity = Severity.LOW
    """Lowest bandit severity reported."""
    confidence: Severity = Severity.MEDIUM
    """Lowest bandit confidence reported (LOW/MEDIUM/HIGH)."""
    include_tests: bool = False
    """Whether test files (`tests/`, `test_*.py`) are analysed too."""


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """A repo-level, dated exception for a finding or a rule."""

    reason: str
    """Why it is acceptable; shown in reports."""
    expires: dt.date
    """Last day it applies; after it the finding blocks again."""
    finding_id: str = ""
    """Finding id (`sec-3f9a2c`) or advisory id (`PYSEC-2018-28`) to ignore."""
    rule_id: str = ""
    """Rule id (`B501`) to ignore; with `paths` to narrow it."""
    paths: tuple[str, ...] = ()
    """Path globs the entry applies to (all paths when empty)."""
    line: int = 0
    """Line of the entry in the rules file, for messages."""


@dataclass(frozen=True, slots=True)
class ApprovalCondition:
    """When an approval rule applies; all given parts must hold (empty = always)."""

    changed: tuple[str, ...] = ()
    """Path globs; applies when any changed file matches one."""
    labels: tuple[str, ...] = ()
    """Applies when the PR has any of these labels."""
    data_classification: tuple[str, ...] = ()
    """Applies when any changed connector has one of these classifications."""
    min_risk: int = 0
    """Applies when the PR's risk score is at least this."""


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """A group of people whose approval the gate requires."""

    name: str
    """Name shown to users (`security`, `ops`)."""
    teams: tuple[str, ...] = ()
    """Team slugs of the repository owner's organisation."""
    users: tuple[str, ...] = ()
    """Logins that count as members too."""
    count: int = 1
    """Approvals needed before risk raises it."""
    when: ApprovalCondition = field(default_factory=ApprovalCondition)
    """When the rule applies."""
    line: int = 0
    """Line of the rule in the rules file."""


@dataclass(frozen=True, slots=True)
class RiskRaise:
    """Extra approvals required from a risk score upward."""

    min_score: int
    """Score from which it applies."""
    add: Mapping[str, int]
    """Approval rule name -> extra approvals."""


@dataclass(frozen=True, slots=True)
class RiskRules:
    """How risk raises required approvals (scoring is documented in docs/gate.md)."""

    raises: tuple[RiskRaise, ...] = (RiskRaise(min_score=5, add={"security": 1}),)
    """Applied cumulatively, in order."""


@dataclass(frozen=True, slots=True)
class WaiverRules:
    """Who may waive what, and for how long."""

    default_days: int = 30
    """Validity of a waiver given without `--until`."""
    max_days: int = 90
    """Longest validity a waiver may have."""
    categories: Mapping[str, str] = field(
        default_factory=lambda: {
            "manifest": "security",
            "secrets": "security",
            "dependencies": "security",
            "static": "security",
            "tests": "ops",
            "performance": "ops",
        }
    )
    """Check name -> approval rule whose members may waive its findings."""


@dataclass(frozen=True, slots=True)
class TestsRules:
    """Limits for the connector's own tests."""

    timeout_s: int = 300
    """Wall-clock limit of the test command."""
    install_timeout_s: int = 600
    """Wall-clock limit of installing the requirements."""
    index_url: str = ""
    """Package index for installs (empty: pip's default)."""


@dataclass(frozen=True, slots=True)
class PerformanceRules:
    """Load settings and caps for the performance check."""

    duration_s: int = 10
    """Default k6 duration."""
    max_duration_s: int = 60
    """Cap on duration (a manifest cannot ask for more)."""
    vus: int = 5
    """Default virtual users."""
    max_vus: int = 50
    """Cap on virtual users."""
    regression_tolerance: float = 0.20
    """Allowed p95 growth against the default branch's baseline (0.20 = 20 %)."""
    regression_min_ms: float = 10.0
    """Growth below this many milliseconds is never a regression: a 5 ms p95 moves by more
    than 20 % from run to run on a shared machine, and that is noise, not a slower connector."""


@dataclass(frozen=True, slots=True)
class SandboxRules:
    """What isolation untrusted code must run under."""

    allow_weak_isolation_for_forks: bool = False
    """Run fork PRs' code even when no network namespace is available."""


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything `.github/connector-gate.yml` can say."""

    connectors: tuple[str, ...] = ("connectors/*",)
    """Globs of connector directories (each holding connector.yaml)."""
    fail_on: Severity = Severity.MEDIUM
    """Findings at or above this severity fail their check."""
    run_on_drafts: bool = False
    """Whether draft PRs are checked."""
    manifest: ManifestRules = field(default_factory=ManifestRules)
    static: StaticRules = field(default_factory=StaticRules)
    ignore: tuple[IgnoreEntry, ...] = ()
    approvals: tuple[ApprovalRule, ...] = ()
    risk: RiskRules = field(default_factory=RiskRules)
    waivers: WaiverRules = field(default_factory=WaiverRules)
    tests: TestsRules = field(default_factory=TestsRules)
    performance: PerformanceRules = field(default_factory=PerformanceRules)
    sandbox: SandboxRules = field(default_factory=SandboxRules)
    source: str = ""
    """Where the rules came from (path, or `owner/repo@ref:path`), for messages."""
    digest: str = ""
    """Hash of the rules' content, part of the check cache key."""
