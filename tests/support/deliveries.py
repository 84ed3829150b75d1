"""Verified deliveries for the storage tests."""

from __future__ import annotations

import json
from typing import Any

from bot.storage import DeliveryStatus, NewDelivery, StoredDelivery

#: Text of every test payload: an error message or log line that carries it leaks payloads.
PAYLOAD_CANARY = "canary-payload-text"

#: The payload of `new_delivery` unless a test gives its own.
DEFAULT_PAYLOAD = {"action": "opened", "number": 7, "title": PAYLOAD_CANARY}


def new_delivery(delivery_id: str, **overrides: Any) -> NewDelivery:
    """A pull_request delivery of installation 42 on acme/connectors; fields overridable."""
    fields: dict[str, Any] = {
        "delivery_id": delivery_id,
        "event": "pull_request",
        "action": "opened",
        "installation_id": 42,
        "repo": "acme/connectors",
        "payload": json.dumps(DEFAULT_PAYLOAD),
    }
    fields.update(overrides)
    return NewDelivery(**fields)


def assert_stored_as_sent(stored: StoredDelivery | None, sent: NewDelivery) -> None:
    """`stored` is `sent`, queued and never tried."""
    assert stored is not None
    assert (stored.delivery_id, stored.event, stored.action) == (
        sent.delivery_id,
        sent.event,
        sent.action,
    )
    assert (stored.installation_id, stored.repo) == (sent.installation_id, sent.repo)
    assert stored.payload == sent.payload
    assert stored.status is DeliveryStatus.QUEUED
    assert stored.attempts == 0
