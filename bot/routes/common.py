"""What every route receives: the process's collaborators and the delivery's facts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.github import GitHubApp, InstallationClient, PullRequest, RepoRef
from bot.review.context import PullRequestJob, ReviewDeps


@dataclass(frozen=True, slots=True)
class RouteContext:
    """Passed to every route handler with the event."""

    app: GitHubApp
    """The App's client (one per process)."""
    deps: ReviewDeps
    """Storage and settings for reviews."""
    installation_id: int
    """Installation the delivery came from."""
    delivery_id: str
    """X-GitHub-Delivery of the event."""

    @property
    def gh(self) -> InstallationClient:
        return self.app.installation(self.installation_id)

    def job(
        self, repo: RepoRef, pr: PullRequest, actor: str = "", only: tuple[str, ...] = ()
    ) -> PullRequestJob:
        return PullRequestJob(self.gh, repo, pr, self.delivery_id, actor, only)


def repo_of(data: dict[str, object]) -> RepoRef:
    repository = data["repository"]
    assert isinstance(repository, dict)
    return RepoRef.parse(str(repository["full_name"]))


def sender_of(data: dict[str, object]) -> str:
    sender = data.get("sender")
    return str(sender.get("login", "")) if isinstance(sender, dict) else ""
