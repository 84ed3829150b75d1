"""push events: a connector change landing on the default branch records its baseline."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.review.baseline import push_facts, record_push_baselines
from bot.routes.common import RouteContext, sender_of

router = routing.Router()


@router.register("push")
async def record_baselines(event: sansio.Event, ctx: RouteContext) -> None:
    push = push_facts(event.data)
    if push.lands_on_default_branch:
        await record_push_baselines(ctx.deps, ctx.gh, push, ctx.delivery_id, sender_of(event.data))
