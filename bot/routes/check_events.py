"""check_run / check_suite re-requests: run the checks again for the PRs of that head."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.github import PullRequest, RepoRef
from bot.review.job import review_pull_request
from bot.routes.common import RouteContext, repo_of, sender_of

router = routing.Router()


async def _pulls_for(
    ctx: RouteContext, repo: RepoRef, head_sha: str, listed: list[dict[str, object]]
) -> tuple[PullRequest, ...]:
    if listed:
        return tuple([await ctx.gh.get_pull_request(repo, int(str(p["number"]))) for p in listed])
    # Fork PRs arrive with an empty `pull_requests` list: find them by head sha.
    return await ctx.gh.open_pull_requests_for_sha(repo, head_sha)


async def _rerun(event: sansio.Event, ctx: RouteContext, key: str, only: tuple[str, ...]) -> None:
    repo = repo_of(event.data)
    item = event.data[key]
    for pr in await _pulls_for(
        ctx, repo, str(item["head_sha"]), list(item.get("pull_requests", []))
    ):
        if pr.state == "open" and pr.head_sha == item["head_sha"]:
            await review_pull_request(ctx.deps, ctx.job(repo, pr, sender_of(event.data), only))


@router.register("check_run", action="rerequested")
async def rerun_check(event: sansio.Event, ctx: RouteContext) -> None:
    name = str(event.data["check_run"]["name"]).removeprefix("connector-gate/")
    only = () if name == "gate" else (name,)
    await _rerun(event, ctx, "check_run", only)


@router.register("check_suite", action="rerequested")
async def rerun_suite(event: sansio.Event, ctx: RouteContext) -> None:
    await _rerun(event, ctx, "check_suite", ())
