"""What a review step needs: the installation's client, storage, settings, who triggered it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.github import InstallationClient, PullRequest, RepoRef
from bot.storage import AuditEntry, Storage
from checks.base import CheckSettings


@dataclass(frozen=True, slots=True)
class ReviewDeps:
    """Long-lived collaborators shared by every job of the process."""

    storage: Storage
    """Durable state (waivers, posted comments, results, audit)."""
    check_settings: CheckSettings
    """Settings passed to the checks (OSV URL, cache)."""
    work_dir: Path
    """Where tarballs are fetched and extracted (one folder per job, removed after)."""
    public_url: str = ""
    """Base of `details_url` links; empty when not configured."""
    today: dt.date | None = None
    """Fixed date for tests; None means the real date."""


@dataclass(frozen=True, slots=True)
class PullRequestJob:
    """One unit of work on one pull request."""

    gh: InstallationClient
    """Client authenticated as the installation."""
    repo: RepoRef
    """Repository."""
    pr: PullRequest
    """The pull request as fetched (head sha included)."""
    delivery_id: str
    """Webhook delivery that caused the job, for the audit trail."""
    actor: str = ""
    """Who caused it (sender login)."""
    only: tuple[str, ...] = field(default=())
    """Checks to re-run; empty means all."""

    @property
    def full_name(self) -> str:
        return f"{self.repo.owner}/{self.repo.name}"

    def audit_entry(self, kind: str, detail: dict[str, Any]) -> AuditEntry:
        """An audit record of this job: who, which PR and head, which delivery."""
        return AuditEntry(
            actor=self.actor or "connector-gate",
            kind=kind,
            repo=self.full_name,
            pr=self.pr.number,
            head_sha=self.pr.head_sha,
            delivery_id=self.delivery_id,
            detail=detail,
        )
