"""What to answer a webhook request, decided from its headers and body alone (pure; no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.storage.models import InstallationChange, NewDelivery
from bot.webhooks.signature import signature_valid

#: GitHub never sends a payload bigger than this (it drops larger events).
MAX_BODY_BYTES = 25 * 1024 * 1024

#: Events the App acts on, with the actions that matter (None: every action).
INTERESTING_EVENTS: Mapping[str, frozenset[str] | None] = {
    "pull_request": frozenset(
        {
            "opened",
            "synchronize",
            "reopened",
            "ready_for_review",
            "edited",
            "closed",
            "labeled",
            "unlabeled",
        }
    ),
    "pull_request_review": frozenset({"submitted", "edited", "dismissed"}),
    "check_run": frozenset({"rerequested", "requested_action"}),
    "check_suite": frozenset({"rerequested"}),
    "issue_comment": frozenset({"created"}),
    "installation": frozenset({"created", "deleted", "suspend", "unsuspend"}),
    "installation_repositories": None,
    "push": None,
    "membership": None,
    "merge_group": None,
}

_MAX_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class Reply:
    """The HTTP answer to a webhook request."""

    status: int
    """HTTP status code."""
    reason: str
    """Short machine name of the outcome (metrics label, logs)."""
    message: str
    """Text body, shown to the App's owner in GitHub's delivery log."""


ACCEPTED = Reply(202, "accepted", "delivery stored\n")
DUPLICATE = Reply(200, "duplicate", "delivery already received\n")
PING = Reply(200, "ping", "pong\n")
IGNORED = Reply(200, "ignored", "event not handled by this App; ignored\n")
STORAGE_UNAVAILABLE = Reply(503, "storage_error", "could not store the delivery; try again\n")
TOO_LARGE = Reply(413, "too_large", "payload larger than GitHub's 25 MB limit\n")
FORM_ENCODED = Reply(
    415,
    "form_encoded",
    "form-encoded deliveries are not supported: set the webhook content type to application/json\n",
)
NOT_JSON = Reply(415, "content_type", "content type must be application/json\n")
MISSING_EVENT = Reply(400, "missing_event", "missing or invalid X-GitHub-Event header\n")
MISSING_DELIVERY = Reply(400, "missing_delivery", "missing or invalid X-GitHub-Delivery header\n")
MISSING_SIGNATURE = Reply(401, "missing_signature", "missing X-Hub-Signature-256 header\n")
SHA1_ONLY = Reply(
    401, "sha1_only", "only X-Hub-Signature (SHA-1) was sent; X-Hub-Signature-256 is required\n"
)
BAD_SIGNATURE = Reply(401, "bad_signature", "signature does not match\n")
MALFORMED_JSON = Reply(400, "malformed_json", "body is not a JSON object\n")


def check_envelope(headers: Mapping[str, str]) -> Reply | None:
    """Refuse what the headers alone rule out, before a byte of the body is read."""
    length = headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return TOO_LARGE
    media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return FORM_ENCODED
    if media_type != "application/json":
        return NOT_JSON
    if not _valid_id(headers.get("X-GitHub-Event")):
        return MISSING_EVENT
    if not _valid_id(headers.get("X-GitHub-Delivery")):
        return MISSING_DELIVERY
    return None


def check_delivery(
    headers: Mapping[str, str], body: bytes, secrets: Iterable[str]
) -> Reply | NewDelivery:
    """Verify and parse a delivery whose envelope passed: a Reply to send now, or what to store."""
    refusal = _check_signature(headers, body, secrets)
    if refusal:
        return refusal
    parsed = _parse_object(body)
    if parsed is None:
        return MALFORMED_JSON
    text, payload = parsed
    event = headers["X-GitHub-Event"]
    if event == "ping":
        return PING
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    if not is_interesting(event, action):
        return IGNORED
    return _new_delivery(headers["X-GitHub-Delivery"], event, action, payload, text, body)


def is_interesting(event: str, action: str | None) -> bool:
    """True if the App acts on this event and action."""
    if event not in INTERESTING_EVENTS:
        return False
    actions = INTERESTING_EVENTS[event]
    return actions is None or action in actions


def installation_change(
    event: str, action: str | None, payload: Mapping[str, Any]
) -> InstallationChange | None:
    """What an installation or installation_repositories event says about the installation."""
    installation = payload.get("installation")
    if event not in ("installation", "installation_repositories"):
        return None
    if not isinstance(installation, dict) or not isinstance(installation.get("id"), int):
        return None
    account = _nested_str(installation, "account", "login") or ""
    change = InstallationChange(installation["id"], account)
    if event == "installation_repositories":
        return change
    states: dict[str | None, InstallationChange] = {
        "created": InstallationChange(change.installation_id, account, False, False),
        "deleted": InstallationChange(change.installation_id, account, deleted=True),
        "suspend": InstallationChange(change.installation_id, account, suspended=True),
        "unsuspend": InstallationChange(change.installation_id, account, suspended=False),
    }
    return states.get(action, change)


def _check_signature(
    headers: Mapping[str, str], body: bytes, secrets: Iterable[str]
) -> Reply | None:
    header = headers.get("X-Hub-Signature-256")
    if header is None:
        return SHA1_ONLY if "X-Hub-Signature" in headers else MISSING_SIGNATURE
    return None if signature_valid(body, header, secrets) else BAD_SIGNATURE


def _parse_object(body: bytes) -> tuple[str, dict[str, Any]] | None:
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return None
    return (text, parsed) if isinstance(parsed, dict) else None


def _new_delivery(
    delivery_id: str,
    event: str,
    action: str | None,
    payload: dict[str, Any],
    text: str,
    body: bytes,
) -> NewDelivery:
    installation_id = _nested(payload, "installation", "id")
    return NewDelivery(
        delivery_id=delivery_id,
        event=event,
        action=action,
        installation_id=installation_id if isinstance(installation_id, int) else None,
        repo=_nested_str(payload, "repository", "full_name"),
        payload=text,  # exactly what GitHub signed
        installation_change=installation_change(event, action, payload),
        body=body,
    )


def _nested(payload: Mapping[str, Any], *keys: str) -> object:
    value: object = payload
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _nested_str(payload: Mapping[str, Any], *keys: str) -> str | None:
    value = _nested(payload, *keys)
    return value if isinstance(value, str) else None


def _valid_id(value: str | None) -> bool:
    return bool(value) and len(value or "") <= _MAX_ID_CHARS and (value or "").isprintable()
