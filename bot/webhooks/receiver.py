"""POST /webhook: verify, store durably (group commit), answer; nothing else on the hot path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.logs import log_context
from bot.metrics import Metrics
from bot.storage import DeliveryWriter, NewDelivery, StorageError
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
        writer: DeliveryWriter,
        metrics: Metrics,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self._secrets = tuple(secrets)
        self._writer = writer
        self._metrics = metrics
        self._on_stored = on_stored

    async def __call__(self, request: web.Request) -> web.Response:
        """Answer one delivery; 202 only once it is committed to storage."""
        headers = request.headers
        with log_context(
            delivery_id=headers.get("X-GitHub-Delivery"), event=headers.get("X-GitHub-Event")
        ):
            reply = check_envelope(headers)
            if reply is None:
                reply = await self._receive(request)
            self._metrics.count_delivery(reply.status, reply.reason)
            return web.Response(status=reply.status, text=reply.message)

    async def _receive(self, request: web.Request) -> Reply:
        try:
            # The application's client_max_size caps the read, also without Content-Length.
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refused(TOO_LARGE)
        decision = check_delivery(request.headers, body, self._secrets)
        if isinstance(decision, Reply):
            return decision if decision.status < 400 else _refused(decision)
        return await self._store(decision)

    async def _store(self, delivery: NewDelivery) -> Reply:
        with log_context(
            action=delivery.action, installation_id=delivery.installation_id, repo=delivery.repo
        ):
            try:
                is_new = await self._writer.submit(delivery)
            except StorageError:
                logger.exception("could not store a delivery")
                return STORAGE_UNAVAILABLE
            if not is_new:
                return DUPLICATE
            self._on_stored()
            logger.debug("delivery stored")
            return ACCEPTED


def _refused(reply: Reply) -> Reply:
    logger.warning("webhook refused (%d %s)", reply.status, reply.reason)
    return reply
