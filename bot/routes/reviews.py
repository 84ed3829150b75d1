"""pull_request_review events: approvals change, so the gate is evaluated again."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.review.job import reevaluate_gate
from bot.routes.common import RouteContext, repo_of, sender_of

router = routing.Router()


@router.register("pull_request_review", action="submitted")
@router.register("pull_request_review", action="edited")
@router.register("pull_request_review", action="dismissed")
async def reevaluate_on_review(event: sansio.Event, ctx: RouteContext) -> None:
    repo = repo_of(event.data)
    pr = await ctx.gh.get_pull_request(repo, int(event.data["pull_request"]["number"]))
    if pr.state == "open":
        await reevaluate_gate(ctx.deps, ctx.job(repo, pr, sender_of(event.data)))
