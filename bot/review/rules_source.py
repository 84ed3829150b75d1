"""Rules in force for a repository: org defaults overridden by the default branch's file."""

from __future__ import annotations

from bot.github import GitHubError, InstallationClient, RepoRef
from bot.review.changes import RULES_FILE
from checks.errors import ConfigError
from checks.rules import parse_rules_layered
from checks.rules_model import Rules

ORG_RULES_REPO = ".github"
ORG_RULES_FILE = "connector-gate.yml"


async def _org_defaults(gh: InstallationClient, owner: str) -> bytes | None:
    # The installation may not cover the org's .github repository: then there are no defaults.
    try:
        return await gh.get_file_contents(RepoRef(owner, ORG_RULES_REPO), ORG_RULES_FILE)
    except GitHubError:
        return None


async def load_rules(
    gh: InstallationClient, repo: RepoRef, default_branch: str
) -> Rules | ConfigError:
    """The rules of the default branch, never the pull request's; invalid → the error."""
    layers: list[tuple[str, str | bytes]] = []
    org = await _org_defaults(gh, repo.owner)
    if org is not None:
        layers.append((f"{repo.owner}/{ORG_RULES_REPO}:{ORG_RULES_FILE}", org))
    text = await gh.get_file_contents(repo, RULES_FILE, default_branch)
    if text is not None:
        layers.append((f"{repo.owner}/{repo.name}@{default_branch}:{RULES_FILE}", text))
    try:
        return parse_rules_layered(layers) if layers else Rules(source="defaults")
    except ConfigError as exc:
        return exc
