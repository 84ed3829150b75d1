"""Turns a stored delivery into a routed event with everything the handlers need."""

from __future__ import annotations

import logging

from aiohttp import web
from gidgethub import sansio

from bot.app import CLIENT_SESSION_KEY, SETTINGS_KEY, STORAGE_KEY
from bot.github import GitHubApp
from bot.jobs.runner import Handler
from bot.review.context import ReviewDeps
from bot.routes import router
from bot.routes.common import RouteContext
from bot.storage.models import StoredDelivery
from checks.base import CheckSettings

logger = logging.getLogger(__name__)


def handler_factory(app: web.Application) -> Handler:
    """The delivery handler, built once the app's storage and client session exist."""
    settings = app[SETTINGS_KEY]
    github = GitHubApp(
        app[CLIENT_SESSION_KEY],
        app_id=settings.app_id,
        private_key=settings.private_key,
        base_url=settings.api_url,
    )
    deps = ReviewDeps(
        storage=app[STORAGE_KEY],
        check_settings=CheckSettings(
            osv_url=settings.osv_url, cache_dir=settings.work_dir / "cache"
        ),
        work_dir=settings.work_dir / "reviews",
        public_url=settings.public_url,
    )

    async def handle(delivery: StoredDelivery) -> None:
        if delivery.installation_id is None:
            return  # nothing to act on without an installation (e.g. a ping)
        event = sansio.Event(
            delivery.payload_json(), event=delivery.event, delivery_id=delivery.delivery_id
        )
        context = RouteContext(github, deps, delivery.installation_id, delivery.delivery_id)
        await router.dispatch(event, context)

    return handle
