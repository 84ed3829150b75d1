"""membership events: a team of the approval rules changed, so open PRs are evaluated again."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.github import RepoRef
from bot.review.job import latest_snapshot, reevaluate_gate
from bot.review.rules_source import load_rules
from bot.routes.common import RouteContext, sender_of
from checks.rules_model import Rules

#: Repositories of the installation looked at per event, and open PRs per repository.
MAX_REPOS = 50
MAX_PULLS = 100

router = routing.Router()


def uses_team(rules: Rules, team_slug: str) -> bool:
    """Whether any approval rule counts members of `team_slug`."""
    wanted = team_slug.lower()
    return any(wanted == team.lower() for rule in rules.approvals for team in rule.teams)


async def _reevaluate_repo(ctx: RouteContext, repo: RepoRef, team: str, actor: str) -> int:
    """Re-evaluate each open PR already reviewed, if the repo's rules use `team`."""
    pulls = await ctx.gh.open_pull_requests(repo, MAX_PULLS)
    if not pulls:
        return 0
    rules = await load_rules(ctx.gh, repo, pulls[0].default_branch)
    if not isinstance(rules, Rules) or not uses_team(rules, team):
        return 0  # invalid rules already fail every gate; other teams change nothing
    done = 0
    for pr in pulls:
        job = ctx.job(repo, pr, actor)
        # Only PRs with a stored review: the rest get reviewed when they next change.
        if await latest_snapshot(ctx.deps, job) is not None:
            await reevaluate_gate(ctx.deps, job)
            done += 1
    return done


@router.register("membership", action="added")
@router.register("membership", action="removed")
async def reevaluate_on_membership(event: sansio.Event, ctx: RouteContext) -> None:
    data = event.data
    if data.get("scope") != "team":
        return
    org = str(data["organization"]["login"])
    team = str(data["team"]["slug"])
    ctx.gh.forget_team_member(org, team, str(data["member"]["login"]))
    # The event names no repository: use those this installation has sent events about.
    for full_name in await ctx.deps.storage.installation_repos(ctx.installation_id, MAX_REPOS):
        repo = RepoRef.parse(full_name)
        if repo.owner.lower() == org.lower():
            await _reevaluate_repo(ctx, repo, team, sender_of(data))
