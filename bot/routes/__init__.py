"""Webhook events routed to handlers, one module per concern, merged into one router."""

from __future__ import annotations

from gidgethub import routing

from bot.routes import (
    check_events,
    comments,
    membership,
    merge_group,
    pull_requests,
    push,
    reviews,
)

router = routing.Router(
    pull_requests.router,
    reviews.router,
    check_events.router,
    comments.router,
    push.router,
    membership.router,
    merge_group.router,
)

__all__ = ["router"]
