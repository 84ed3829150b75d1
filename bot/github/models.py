"""Frozen dataclasses the GitHub client returns and accepts, parsed at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AnnotationLevel = Literal["notice", "warning", "failure"]
ReviewEvent = Literal["APPROVE", "REQUEST_CHANGES", "COMMENT"]
Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
CheckStatus = Literal["queued", "in_progress", "completed"]
GitHubConclusion = Literal[
    "action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"
]
CommitState = Literal["error", "failure", "pending", "success"]


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A repository named by owner and name."""

    owner: str
    """Account (user or organisation) owning the repository."""
    name: str
    """Repository name without the owner."""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, full_name: str) -> RepoRef:
        """`owner/name` → RepoRef; raises ValueError on anything else."""
        owner, sep, name = full_name.partition("/")
        if not (owner and sep and name) or "/" in name:
            raise ValueError(f"not an owner/name repository: {full_name!r}")
        return cls(owner, name)


@dataclass(frozen=True, slots=True)
class InstallationToken:
    """An installation access token; the secret stays out of repr."""

    token: str = field(repr=False)
    """The bearer secret; never logged."""
    expires_at: float
    """Expiry as a Unix timestamp."""


@dataclass(frozen=True, slots=True)
class AppInfo:
    """The authenticated GitHub App."""

    id: int
    """Numeric App id."""
    slug: str
    """URL-friendly name; the App's bot user is `<slug>[bot]`."""
    name: str
    """Display name."""

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass(frozen=True, slots=True)
class Installation:
    """One installation of the App on an account."""

    id: int
    """Installation id, used to mint tokens."""
    account: str
    """Login of the user or organisation the App is installed on."""


@dataclass(frozen=True, slots=True)
class PullRequest:
    """The facts about a pull request the gate needs."""

    number: int
    """PR number within the base repository."""
    title: str
    """Title as typed by the author."""
    state: str
    """`open` or `closed`."""
    draft: bool
    """True while the PR is a draft."""
    author: str
    """Login of the user who opened it."""
    head_sha: str
    """Commit the PR currently points at."""
    head_ref: str
    """Branch name on the head repository."""
    head_repo: str
    """`owner/name` of the head repository (a fork for fork PRs); empty if it was deleted."""
    base_ref: str
    """Branch the PR targets."""
    base_sha: str
    """Commit of the base branch GitHub computed the diff against."""
    base_repo: str
    """`owner/name` of the repository the PR targets."""
    default_branch: str
    """Default branch of the base repository (empty when GitHub omits it)."""
    labels: tuple[str, ...]
    """Label names."""
    html_url: str
    """Link for humans."""

    @property
    def is_fork(self) -> bool:
        return self.head_repo != self.base_repo


@dataclass(frozen=True, slots=True)
class PullRequestFile:
    """One file changed by a pull request."""

    filename: str
    """Path in the head commit."""
    status: str
    """`added`, `removed`, `modified`, `renamed`, `copied`, `changed` or `unchanged`."""
    additions: int
    """Lines added."""
    deletions: int
    """Lines removed."""
    previous_filename: str = ""
    """Former path for renames, empty otherwise."""
    patch: str | None = None
    """Unified diff hunk text; None for binary or very large diffs."""


@dataclass(frozen=True, slots=True)
class PullRequestFiles:
    """Every file GitHub lists for a PR, and whether GitHub's 3000-file cap cut the list."""

    files: tuple[PullRequestFile, ...]
    """Files in GitHub's order."""
    truncated: bool
    """True when the list reached GitHub's cap, so more files may have changed."""


@dataclass(frozen=True, slots=True)
class Review:
    """A submitted (or pending) pull request review."""

    id: int
    """Review id."""
    author: str
    """Login of the reviewer (empty for deleted users)."""
    state: str
    """`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`."""
    commit_id: str
    """Commit the review was made on."""
    submitted_at: str
    """ISO 8601 time, empty while pending."""
    body: str
    """Review text."""


@dataclass(frozen=True, slots=True)
class ReviewComment:
    """An inline comment to attach to a new review, on the new side of the diff."""

    path: str
    """File path relative to the repository root."""
    line: int
    """Line in the new version of the file (must be part of the diff)."""
    body: str
    """Comment text (markdown)."""
    start_line: int | None = None
    """First line of a multi-line comment; None for a one-line comment."""


@dataclass(frozen=True, slots=True)
class Annotation:
    """A check-run annotation pinned to lines of a file."""

    path: str
    """File path relative to the repository root."""
    start_line: int
    """First line (1-based)."""
    end_line: int
    """Last line (inclusive)."""
    level: AnnotationLevel
    """`notice`, `warning` or `failure`."""
    message: str
    """What is wrong (shown under the line)."""
    title: str = ""
    """Short heading."""
    raw_details: str = ""
    """Extra plain text, folded by default."""


@dataclass(frozen=True, slots=True)
class CheckRunOutput:
    """What a check run shows: title, summary, details and annotations."""

    title: str
    """One line shown next to the check name."""
    summary: str
    """Markdown summary (truncated to GitHub's limit when sent)."""
    text: str = ""
    """Longer markdown details (truncated to GitHub's limit when sent)."""
    annotations: tuple[Annotation, ...] = ()
    """Every annotation; sent 50 per request."""


@dataclass(frozen=True, slots=True)
class CheckRun:
    """A check run as GitHub reports it."""

    id: int
    """Check run id."""
    name: str
    """Check name (what branch protection requires)."""
    head_sha: str
    """Commit the run belongs to."""
    status: str
    """`queued`, `in_progress` or `completed` (or an Actions-only status)."""
    conclusion: str | None
    """GitHub conclusion once completed, else None."""
    external_id: str
    """Our reference for the run (empty when unset)."""
    html_url: str
    """Link for humans."""
    annotations_count: int = 0
    """Annotations already attached (GitHub appends those of every update)."""


@dataclass(frozen=True, slots=True)
class IssueComment:
    """A conversation comment on an issue or pull request."""

    id: int
    """Comment id."""
    body: str
    """Markdown body."""
    author: str
    """Login of the author (empty for deleted users)."""
    html_url: str
    """Link for humans."""
