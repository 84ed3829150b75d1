"""In-memory GitHub state a test sets up, and what the bot did to it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1000)


def next_id() -> int:
    return next(_ids)


@dataclass
class FakePullFile:
    filename: str
    status: str = "added"
    additions: int = 1
    deletions: int = 0
    patch: str | None = "@@ -0,0 +1 @@\n+x"
    previous_filename: str = ""


@dataclass
class FakePull:
    number: int
    head_sha: str
    head_ref: str = "feature"
    base_ref: str = "main"
    base_sha: str = "b" * 40
    author: str = "octocat"
    title: str = "Add a connector"
    draft: bool = False
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    head_repo: str = ""  # `owner/name` of a fork; empty means the base repository
    files: list[FakePullFile] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int = field(default_factory=next_id)
    default_branch: str = "main"
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # ref → path → bytes
    tarballs: dict[str, bytes] = field(default_factory=dict)  # ref → .tar.gz
    collaborators: dict[str, str] = field(default_factory=dict)  # login → permission
    pulls: dict[int, FakePull] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # number → comments

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class FakeInstallation:
    id: int
    account: str
    repos: list[str] = field(default_factory=list)  # full names; empty means every repo of account

    def covers(self, full_name: str) -> bool:
        owner = full_name.split("/", 1)[0]
        if self.repos:
            return full_name.lower() in {r.lower() for r in self.repos}
        return owner.lower() == self.account.lower()


@dataclass
class Recorded:
    """Every write the bot made, for tests to assert on."""

    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    check_run_patches: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    comments_created: list[dict[str, Any]] = field(default_factory=list)
    comments_updated: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    downloads: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "check_runs": list(self.check_runs.values()),
            "check_run_patches": self.check_run_patches,
            "reviews": self.reviews,
            "comments_created": self.comments_created,
            "comments_updated": self.comments_updated,
            "reactions": self.reactions,
            "labels": self.labels,
            "statuses": self.statuses,
            "tokens_issued": self.tokens_issued,
            "downloads": self.downloads,
        }


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    operation: str | None
    status: int = 0
    fault: str = ""
    has_authorization: bool = False


@dataclass
class Violation:
    method: str
    path: str
    operation: str | None
    kind: str  # unknown-operation | invalid-request | invalid-response
    detail: str


@dataclass
class Fault:
    """Answer the next `count` matching requests with an error (or delay them)."""

    count: int
    status: int = 502
    method: str | None = None
    path_contains: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"message": "Server Error"})
    delay_s: float = 0.0
    passthrough: bool = False  # after the delay, answer normally

    def matches(self, method: str, path: str) -> bool:
        if self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_contains or self.path_contains in path
