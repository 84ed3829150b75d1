"""Typed rows the storage layer accepts and returns, and its one exception family."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class StorageError(Exception):
    """The database could not be reached, migrated or written."""


class DeliveryStatus(StrEnum):
    """Where a delivery is in the job queue."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # kept for operators marking a delivery by hand; the runner retries
    DEAD = "dead"  # out of attempts; needs a person


@dataclass(frozen=True, slots=True)
class InstallationChange:
    """What an installation event says about an installation."""

    installation_id: int
    """GitHub's installation id."""
    account: str
    """Login of the account the App is installed on."""
    suspended: bool | None = None
    """New suspension state; None leaves it unchanged."""
    deleted: bool | None = None
    """New deletion state; None leaves it unchanged."""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A verified webhook delivery, ready to be stored and queued."""

    delivery_id: str
    """X-GitHub-Delivery: GitHub's unique id of this delivery (the dedup key)."""
    event: str
    """X-GitHub-Event: the event name (`pull_request`, ...)."""
    action: str | None
    """The payload's `action`, when it has one."""
    installation_id: int | None
    """The payload's `installation.id`, when present."""
    repo: str | None
    """The payload's `repository.full_name`, when present."""
    payload: str
    """The JSON body exactly as received (UTF-8 text)."""
    installation_change: InstallationChange | None = None
    """Set for installation events: applied in the same transaction as the insert."""
    body: bytes = field(default=b"", repr=False, compare=False)
    """The same body as the bytes received, when the intake still holds them: the writer
    process sends those instead of encoding `payload` again (24 KB copied once less)."""


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A delivery as stored in the job queue."""

    id: int
    """Row id (the job id used by complete/fail/release)."""
    delivery_id: str
    """X-GitHub-Delivery."""
    event: str
    """X-GitHub-Event."""
    action: str | None
    """The payload's `action`."""
    installation_id: int | None
    """The payload's `installation.id`."""
    repo: str | None
    """The payload's `repository.full_name`."""
    payload: str = field(repr=False)
    """The JSON body exactly as received."""
    received_at: datetime
    """When it was stored (UTC)."""
    status: DeliveryStatus
    """Queue state."""
    attempts: int
    """How many times a worker has claimed it."""
    next_attempt_at: datetime
    """Not claimed before this time (UTC)."""
    lease_owner: str | None
    """Worker holding it while running."""
    lease_until: datetime | None
    """End of the worker's lease (UTC)."""
    last_error: str | None
    """Scrubbed error of the last failed attempt."""

    def payload_json(self) -> dict[str, Any]:
        """The payload parsed (intake guarantees it is a JSON object)."""
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


@dataclass(frozen=True, slots=True)
class Installation:
    """What we know about an installation of the App."""

    id: int
    """GitHub's installation id."""
    account: str
    """Account login."""
    suspended: bool
    """True while suspended by the account."""
    deleted: bool
    """True once uninstalled."""


@dataclass(frozen=True, slots=True)
class CheckRunRecord:
    """A check run this App created (or is about to create) for one commit."""

    repo: str
    """`owner/name`."""
    head_sha: str
    """Commit the check run reports on."""
    name: str
    """Check run name (unique per repository and commit)."""
    external_id: str
    """Our id for it, sent to GitHub as `external_id`."""
    github_id: int | None
    """GitHub's id once created; None while only reserved."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One append-only audit record: who did what, where."""

    actor: str
    """Login (or `connector-gate`) that caused it."""
    kind: str
    """What happened (`gate.approved`, `waiver.granted`, ...)."""
    repo: str
    """`owner/name`."""
    pr: int | None = None
    """Pull request number, when it concerns one."""
    head_sha: str | None = None
    """Commit, when it concerns one."""
    delivery_id: str | None = None
    """Webhook delivery that led to it, when any."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON detail (never a secret)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit entry as stored."""

    id: int
    """Sequence number."""
    at: datetime
    """When it was written (UTC)."""
    entry: AuditEntry
    """What was recorded."""


@dataclass(frozen=True, slots=True)
class Waiver:
    """A person's decision to accept one finding on one pull request."""

    repo: str
    """`owner/name`."""
    pr: int
    """Pull request number."""
    finding_id: str
    """Short finding id (`sec-3f9a2c`)."""
    reason: str
    """Why it is acceptable."""
    by: str
    """Login of who waived it."""
    until: datetime | None = None
    """Expiry (UTC); None: no expiry."""
    revoked: bool = False
    """True once withdrawn."""


@dataclass(frozen=True, slots=True)
class PerfBaselineRecord:
    """Performance figures of a connector on a repository's default branch."""

    repo: str
    """`owner/name`."""
    connector: str
    """Connector name."""
    p95_ms: float
    """95th percentile latency."""
    rps: float
    """Request rate."""
    error_rate: float
    """Share of failed requests."""
    commit: str
    """Commit measured."""
    measured_at: datetime
    """When it was measured (UTC)."""
