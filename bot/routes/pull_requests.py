"""pull_request events: review new heads, re-evaluate the gate on labels."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from bot.review.job import reevaluate_gate, review_pull_request
from bot.routes.common import RouteContext, repo_of, sender_of

router = routing.Router()


async def _pull(event: sansio.Event, ctx: RouteContext) -> Any:
    repo = repo_of(event.data)
    # The payload may be minutes old: fetch the PR so the head and labels are current.
    return repo, await ctx.gh.get_pull_request(repo, int(event.data["pull_request"]["number"]))


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def review_new_head(event: sansio.Event, ctx: RouteContext) -> None:
    repo, pr = await _pull(event, ctx)
    if pr.state != "open":
        return
    await review_pull_request(ctx.deps, ctx.job(repo, pr, sender_of(event.data)))


@router.register("pull_request", action="edited")
async def review_on_base_change(event: sansio.Event, ctx: RouteContext) -> None:
    if "base" not in event.data.get("changes", {}):
        return  # title/body edits change nothing the gate looks at
    await review_new_head(event, ctx)


@router.register("pull_request", action="labeled")
@router.register("pull_request", action="unlabeled")
async def reevaluate_on_labels(event: sansio.Event, ctx: RouteContext) -> None:
    repo, pr = await _pull(event, ctx)
    if pr.state == "open":
        await reevaluate_gate(ctx.deps, ctx.job(repo, pr, sender_of(event.data)))
