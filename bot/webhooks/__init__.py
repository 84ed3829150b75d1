"""Webhook intake: signature verification, intake decisions and the POST /webhook handler."""

from bot.webhooks.intake import (
    INTERESTING_EVENTS,
    MAX_BODY_BYTES,
    Reply,
    check_delivery,
    check_envelope,
    installation_change,
    is_interesting,
)
from bot.webhooks.receiver import WebhookReceiver
from bot.webhooks.signature import sign, signature_valid

__all__ = [
    "INTERESTING_EVENTS",
    "MAX_BODY_BYTES",
    "Reply",
    "WebhookReceiver",
    "check_delivery",
    "check_envelope",
    "installation_change",
    "is_interesting",
    "sign",
    "signature_valid",
]
