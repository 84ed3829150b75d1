"""Pure intake decisions: signatures, envelope checks, what gets stored, installation changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from bot.storage import InstallationChange, NewDelivery
from bot.webhooks import (
    MAX_BODY_BYTES,
    Reply,
    check_delivery,
    check_envelope,
    installation_change,
    is_interesting,
    sign,
    signature_valid,
)

VECTOR = json.loads(
    (
        Path(__file__).resolve().parents[1] / "fixtures/webhooks/signature-test-vector.json"
    ).read_text()
)
SECRETS = ("old-secret", "new-secret")
BODY = json.dumps(
    {"action": "opened", "installation": {"id": 7}, "repository": {"full_name": "acme/c"}}
).encode()


def test_github_documentation_test_vector() -> None:
    body = VECTOR["payload"].encode()
    assert sign(body, VECTOR["secret"]) == VECTOR["x_hub_signature_256"]
    assert signature_valid(body, VECTOR["x_hub_signature_256"], [VECTOR["secret"]])


@pytest.mark.parametrize(
    ("header", "secrets", "valid"),
    [
        (sign(BODY, "new-secret"), SECRETS, True),
        (sign(BODY, "old-secret"), SECRETS, True),  # rotation: the old one still works
        (sign(BODY, "old-secret").upper().replace("SHA256=", "sha256="), SECRETS, True),
        (sign(BODY, "other-secret"), SECRETS, False),
        (sign(BODY + b" ", "new-secret"), SECRETS, False),
        (sign(BODY, "new-secret")[7:], SECRETS, False),  # no "sha256=" prefix
        ("sha1=" + sign(BODY, "new-secret")[7:], SECRETS, False),
        ("sha256=", SECRETS, False),
        ("sha256=" + "g" * 64, SECRETS, False),  # not hexadecimal
        (sign(BODY, "new-secret")[:-1], SECRETS, False),  # one digit short
        (sign(BODY, "new-secret")[:-2] + " " + sign(BODY, "new-secret")[-2:], SECRETS, False),
        (sign(BODY, "new-secret") + "  ", SECRETS, True),  # trailing whitespace, as before
        ("", SECRETS, False),
        (None, SECRETS, False),
        (sign(BODY, "new-secret"), (), False),
    ],
)
def test_signature_validity(header: str | None, secrets: tuple[str, ...], valid: bool) -> None:
    assert signature_valid(BODY, header, secrets) is valid


def headers(**overrides: str | None) -> CIMultiDict[str]:
    base: dict[str, str | None] = {
        "Content-Type": "application/json",
        "Content-Length": str(len(BODY)),
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": sign(BODY, "new-secret"),
    }
    base.update(overrides)
    return CIMultiDict({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({}, None, None),
        ({"Content-Type": "application/json; charset=utf-8"}, None, None),
        ({"Content-Length": str(MAX_BODY_BYTES + 1)}, 413, "too_large"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "form_encoded"),
        ({"Content-Type": "text/plain"}, 415, "content_type"),
        ({"Content-Type": None}, 415, "content_type"),
        ({"X-GitHub-Event": None}, 400, "missing_event"),
        ({"X-GitHub-Delivery": None}, 400, "missing_delivery"),
        ({"X-GitHub-Delivery": "x" * 65}, 400, "missing_delivery"),
        ({"X-GitHub-Delivery": "bad\nid"}, 400, "missing_delivery"),
    ],
)
def test_envelope(overrides: dict[str, str | None], status: int | None, reason: str | None) -> None:
    reply = check_envelope(headers(**overrides))
    got = (reply.status, reply.reason) if reply else (None, None)
    assert got == (status, reason)


def test_form_encoded_refusal_tells_how_to_fix_it() -> None:
    reply = check_envelope(headers(**{"Content-Type": "application/x-www-form-urlencoded"}))
    assert reply is not None and "application/json" in reply.message


def signed(body: bytes, **overrides: str | None) -> CIMultiDict[str]:
    return headers(**{"X-Hub-Signature-256": sign(body, "old-secret"), **overrides})


@pytest.mark.parametrize(
    ("hdrs", "body", "status", "reason"),
    [
        (headers(**{"X-Hub-Signature-256": None}), BODY, 401, "missing_signature"),
        (
            headers(**{"X-Hub-Signature-256": None, "X-Hub-Signature": "sha1=abc"}),
            BODY,
            401,
            "sha1_only",
        ),
        (headers(**{"X-Hub-Signature-256": sign(BODY, "forged")}), BODY, 401, "bad_signature"),
        (signed(b"{not json"), b"{not json", 400, "malformed_json"),
        (signed(b"[1, 2]"), b"[1, 2]", 400, "malformed_json"),
        (signed(b"\xff\xfe{}"), b"\xff\xfe{}", 400, "malformed_json"),
        (signed(b'{"zen": "hi"}', **{"X-GitHub-Event": "ping"}), b'{"zen": "hi"}', 200, "ping"),
        (signed(BODY, **{"X-GitHub-Event": "star"}), BODY, 200, "ignored"),
        (
            signed(b'{"action": "edited"}', **{"X-GitHub-Event": "issue_comment"}),
            b'{"action": "edited"}',
            200,
            "ignored",
        ),
    ],
)
def test_replies_before_storing(
    hdrs: CIMultiDict[str], body: bytes, status: int, reason: str
) -> None:
    reply = check_delivery(hdrs, body, SECRETS)
    assert isinstance(reply, Reply)
    assert (reply.status, reply.reason) == (status, reason)


def test_an_interesting_delivery_becomes_a_row_to_store() -> None:
    decision = check_delivery(headers(), BODY, SECRETS)
    assert decision == NewDelivery(
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        event="pull_request",
        action="opened",
        installation_id=7,
        repo="acme/c",
        payload=BODY.decode(),
    )


@pytest.mark.parametrize(
    ("event", "action", "interesting"),
    [
        ("pull_request", "opened", True),
        ("pull_request", "synchronize", True),
        ("pull_request", "unlabeled", True),
        ("pull_request", "assigned", False),
        ("pull_request_review", "dismissed", True),
        ("pull_request_review", None, False),
        ("check_run", "rerequested", True),
        ("check_run", "completed", False),
        ("check_suite", "rerequested", True),
        ("check_suite", "completed", False),
        ("issue_comment", "created", True),
        ("issue_comment", "deleted", False),
        ("installation", "suspend", True),
        ("installation", "new_permissions_accepted", False),
        ("installation_repositories", "removed", True),
        ("push", None, True),
        ("membership", "added", True),
        ("merge_group", "checks_requested", True),
        ("star", "created", False),
        ("workflow_run", "completed", False),
    ],
)
def test_interesting_events(event: str, action: str | None, interesting: bool) -> None:
    assert is_interesting(event, action) is interesting


INSTALLATION = {"installation": {"id": 5, "account": {"login": "acme"}}}


@pytest.mark.parametrize(
    ("event", "action", "payload", "change"),
    [
        ("installation", "created", INSTALLATION, InstallationChange(5, "acme", False, False)),
        ("installation", "deleted", INSTALLATION, InstallationChange(5, "acme", deleted=True)),
        ("installation", "suspend", INSTALLATION, InstallationChange(5, "acme", suspended=True)),
        (
            "installation",
            "unsuspend",
            INSTALLATION,
            InstallationChange(5, "acme", suspended=False),
        ),
        ("installation_repositories", "added", INSTALLATION, InstallationChange(5, "acme")),
        ("pull_request", "opened", INSTALLATION, None),
        ("installation", "created", {"installation": {"id": "5"}}, None),
        ("installation", "created", {}, None),
    ],
)
def test_installation_changes(
    event: str, action: str, payload: dict[str, Any], change: InstallationChange | None
) -> None:
    assert installation_change(event, action, payload) == change
