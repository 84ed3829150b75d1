"""Typed facts the gate evaluates and the explained result it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from checks.errors import ConfigError
from checks.manifest_model import Manifest
from checks.model import CheckResult, ConnectorReport, Finding
from checks.registry import CHECK_NAMES as CHECK_NAMES  # re-exported for the gate
from checks.rules_model import Rules

#: Prefix of every check run the App creates (`connector-gate/secrets`).
CHECK_RUN_PREFIX = "connector-gate/"


class ReviewState(StrEnum):
    """States of a pull-request review, as GitHub's API spells them."""

    APPROVED = "APPROVED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    DISMISSED = "DISMISSED"
    COMMENTED = "COMMENTED"
    PENDING = "PENDING"


class RunStatus(StrEnum):
    """Where a check stands for the current head commit."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Review:
    """One submitted review of the pull request."""

    user: str
    """Login of the reviewer."""
    state: ReviewState
    """What the review said."""
    commit_id: str
    """Head sha the review was submitted against."""
    submitted_at: dt.datetime
    """When it was submitted; the latest review per reviewer wins."""
    user_is_bot: bool = False
    """Whether GitHub reports the reviewer's type as Bot."""


@dataclass(frozen=True, slots=True)
class ConnectorFacts:
    """One connector the pull request changes."""

    name: str
    """Connector name (its directory name)."""
    manifest: Manifest | None
    """Its manifest at the head commit; None when it cannot be parsed."""
    base_manifest: Manifest | None = None
    """Its manifest on the base branch; None for a new connector."""


@dataclass(frozen=True, slots=True)
class PullRequestFacts:
    """What the gate needs to know about the pull request itself."""

    org: str
    """Owner of the repository; team slugs are shown as `@org/slug`."""
    author: str
    """Login of the pull request's author, whose approval never counts."""
    head_sha: str
    """Current head commit; only approvals of this commit count."""
    changed_files: tuple[str, ...] = ()
    """Repository-relative paths the pull request changes."""
    labels: tuple[str, ...] = ()
    """Labels on the pull request."""
    connectors: tuple[ConnectorFacts, ...] = ()
    """Connectors the pull request changes."""
    files_truncated: bool = False
    """GitHub stopped listing the changed files (it lists 3000 at most)."""


@dataclass(frozen=True, slots=True)
class ConnectorResult:
    """The result of one check for one connector."""

    connector: str
    """Connector name."""
    result: CheckResult
    """What the check concluded for it."""


@dataclass(frozen=True, slots=True)
class CheckState:
    """A check's state for the current head commit, across every changed connector."""

    check: str
    """Short check name (`secrets`)."""
    status: RunStatus
    """Whether it has finished."""
    results: tuple[ConnectorResult, ...] = ()
    """One result per connector once completed."""


@dataclass(frozen=True, slots=True)
class Waiver:
    """A person's decision that a finding does not block, for a while."""

    finding_id: str
    """Id of the waived finding (`sec-3f9a2c` or an advisory id)."""
    reason: str
    """Why, as the person typed it."""
    waived_by: str
    """Login of the person who waived it."""
    until: dt.date
    """Last day the waiver applies; from the next day the finding blocks again."""

    def active_on(self, today: dt.date) -> bool:
        return today <= self.until

    def covers(self, finding: Finding) -> bool:
        ids = {finding.finding_id.lower(), *(alias.lower() for alias in finding.aliases)}
        return self.finding_id.lower() in ids


@dataclass(frozen=True, slots=True)
class GateInput:
    """Everything one evaluation of the gate looks at."""

    rules: Rules | ConfigError
    """Rules in force, or why they could not be read (then the gate fails)."""
    pr: PullRequestFacts
    """The pull request."""
    checks: tuple[CheckState, ...]
    """State of every check expected for the head commit."""
    today: dt.date
    """Date used to expire waivers."""
    reviews: tuple[Review, ...] = ()
    """Every review submitted so far."""
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Login -> team slugs (of the owner's organisation) they belong to, as fetched."""
    waivers: tuple[Waiver, ...] = ()
    """Waivers recorded for the pull request, expired ones included."""


class Verdict(StrEnum):
    """What the gate decided."""

    PASS = "pass"  # noqa: S105 -- a verdict, not a credential
    PENDING = "pending"
    FAIL = "fail"


class NodeStatus(StrEnum):
    """State of one node of the explanation."""

    PASSED = "passed"
    RUNNING = "running"
    WAITING = "waiting"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ResultNode:
    """One node of the explanation tree users read."""

    name: str
    """What it is about (`approval rule security`, `check secrets`)."""
    status: NodeStatus
    """Its state."""
    reason: str
    """Why, in words (`waiting on 1 approval from @acme/ops`)."""
    children: tuple[ResultNode, ...] = ()
    """Finer explanations."""

    def walk(self) -> Iterable[ResultNode]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One contribution to the risk score."""

    points: int
    """How much it adds."""
    reason: str
    """Why (`restricted data`, `new egress host api.example.com`)."""
    connector: str = ""
    """Connector it concerns (empty for the pull request as a whole)."""


@dataclass(frozen=True, slots=True)
class RiskScore:
    """The pull request's risk score and what makes it up."""

    total: int
    """Score compared with `min_risk` and the risk raises."""
    factors: tuple[RiskFactor, ...] = ()
    """Contributions of the connector that scored highest, then unattributed findings."""


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    """Where one required approval rule stands."""

    rule: str
    """Rule name."""
    owners: tuple[str, ...]
    """Who may approve, as shown (`@acme/security`, `@alice`)."""
    required: int
    """Approvals needed, risk raises included."""
    approvers: tuple[str, ...]
    """Logins counted for this rule."""
    blocked_by: tuple[str, ...] = ()
    """Members whose latest review requests changes."""

    @property
    def satisfied(self) -> bool:
        return not self.blocked_by and len(self.approvers) >= self.required

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.approvers))


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check as the gate sees it, waivers applied."""

    check: str
    """Short check name."""
    status: NodeStatus
    """PASSED, RUNNING, FAILED or SKIPPED."""
    reason: str
    """Why, in words."""
    blocking_findings: int = 0
    """Findings still blocking after waivers, across connectors."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's decision with its explanation."""

    verdict: Verdict
    """Pass, pending or fail."""
    waiting_on_checks: bool
    """True when a pending verdict waits on checks still running (not only on people)."""
    tree: ResultNode
    """The explanation, root first."""
    risk: RiskScore
    """The risk score used."""
    checks: tuple[CheckOutcome, ...] = ()
    """Each check's state."""
    approvals: tuple[ApprovalOutcome, ...] = ()
    """Each required approval rule's state."""
    results: tuple[CheckState, ...] = ()
    """Check states with active waivers applied (what rendering shows)."""
    waived: tuple[Finding, ...] = ()
    """Findings no longer blocking thanks to a waiver or an ignore entry."""
    next_steps: tuple[str, ...] = ()
    """What to do next, in words, most urgent first."""

    @property
    def summary(self) -> str:
        return self.tree.reason


def states_from_reports(
    reports: Iterable[ConnectorReport], running: Iterable[str] = (), expected: Iterable[str] = ()
) -> tuple[CheckState, ...]:
    """Regroup per-connector reports into one state per check.

    Checks in `running` are IN_PROGRESS whatever they reported before; `expected` checks that
    reported nothing yet are QUEUED, so the gate waits for them instead of ignoring them.
    """
    running_set = set(running)
    by_check: dict[str, list[ConnectorResult]] = {name: [] for name in (*expected, *running)}
    for report in reports:
        for result in report.results:
            by_check.setdefault(result.check, []).append(ConnectorResult(report.connector, result))
    return tuple(_state(name, found, running_set) for name, found in by_check.items())


def _state(name: str, found: list[ConnectorResult], running: set[str]) -> CheckState:
    if name in running:
        return CheckState(name, RunStatus.IN_PROGRESS)
    if not found:
        return CheckState(name, RunStatus.QUEUED)
    return CheckState(name, RunStatus.COMPLETED, tuple(found))
