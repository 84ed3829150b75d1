"""POST /webhook: verify, store durably (group commit), answer; nothing else on the hot path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.metrics import IntakeMetrics
from bot.storage.models import NewDelivery, StorageError
from bot.storage.writer import WritesDeliveries
from bot.webhooks.intake import (
    ACCEPTED,
    DUPLICATE,
    STORAGE_UNAVAILABLE,
    TOO_LARGE,
    Reply,
    check_delivery,
    check_envelope,
)

logger = logging.getLogger(__name__)


class WebhookReceiver:
    """The aiohttp handler of POST /webhook."""

    def __init__(
        self,
        secrets: Sequence[str],
        writer: WritesDeliveries,
        metrics: IntakeMetrics,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self._secrets = tuple(secrets)
        self._writer = writer
        self._metrics = metrics
        self._on_stored = on_stored

    async def __call__(self, request: web.Request) -> web.Response:
        """Answer one delivery; 202 only once it is committed to storage."""
        reply = check_envelope(request.headers)
        if reply is None:
            reply = await self._receive(request)
        self._metrics.count_delivery(reply.status, reply.reason)
        return web.Response(status=reply.status, text=reply.message)

    async def _receive(self, request: web.Request) -> Reply:
        try:
            # The application's client_max_size caps the read, also without Content-Length.
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refused(request, TOO_LARGE)
        decision = check_delivery(request.headers, body, self._secrets)
        if isinstance(decision, Reply):
            return decision if decision.status < 400 else _refused(request, decision)
        # Stored from here rather than in a helper coroutine: one frame less to resume when
        # the writer answers, once per webhook.
        try:
            is_new = await self._writer.submit(decision)
        except StorageError:
            logger.exception("could not store a delivery", extra=_delivery_fields(decision))
            return STORAGE_UNAVAILABLE
        if not is_new:
            return DUPLICATE
        self._on_stored()
        return ACCEPTED


# The hot path logs nothing, so these fields are gathered only for the lines that are written
# (a log_context per request cost more than verifying the signature).


def _refused(request: web.Request, reply: Reply) -> Reply:
    fields = {
        "delivery_id": request.headers.get("X-GitHub-Delivery"),
        "event": request.headers.get("X-GitHub-Event"),
    }
    logger.warning("webhook refused (%d %s)", reply.status, reply.reason, extra=fields)
    return reply


def _delivery_fields(delivery: NewDelivery) -> dict[str, object]:
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repo": delivery.repo,
    }
