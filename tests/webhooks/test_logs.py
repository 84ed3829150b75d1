"""Structured logs: JSON lines with delivery context, scrubbed, without headers or tokens."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging, log_context, payload_fields


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging(stream=stream, known_secrets=["my-webhook-secret"])
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_carry_the_delivery_context(captured: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    with log_context(delivery_id="d-1", event="pull_request", repo="acme/c"):
        with log_context(pr=7, head_sha="abc", installation_id=None):
            log.info("checks started for %s", "acme-weather")
        log.warning("outside the inner block")
    log.info("no context")

    first, second, third = lines(captured)
    assert first == {
        "at": first["at"],
        "level": "info",
        "logger": "bot.test",
        "message": "checks started for acme-weather",
        "delivery_id": "d-1",
        "event": "pull_request",
        "repo": "acme/c",
        "pr": 7,
        "head_sha": "abc",
    }
    assert "pr" not in second and second["delivery_id"] == "d-1"
    assert "delivery_id" not in third


def test_tokens_secrets_and_tracebacks_are_scrubbed(captured: io.StringIO) -> None:
    token = "ghp_" + "x" * 36
    log = logging.getLogger("bot.test")
    log.error("GitHub refused %s with secret my-webhook-secret", token)
    try:
        raise RuntimeError(f"Authorization: token {token}")
    except RuntimeError:
        log.exception("call failed")
    text = captured.getvalue()
    assert token not in text and "my-webhook-secret" not in text
    assert "[REDACTED]" in text
    assert "RuntimeError" in lines(captured)[1]["error"]  # type: ignore[operator]


def test_headers_cannot_ride_along_as_extra_fields(captured: io.StringIO) -> None:
    logging.getLogger("bot.test").info(
        "request", extra={"headers": {"Authorization": "Bearer abc"}, "repo": "acme/c"}
    )
    (line,) = lines(captured)
    assert "headers" not in line and "Bearer" not in json.dumps(line)
    assert line["repo"] == "acme/c"


def test_unknown_context_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="authorization"), log_context(authorization="x"):
        pass


@pytest.mark.parametrize(
    ("event", "payload", "fields"),
    [
        (
            "pull_request",
            {"pull_request": {"number": 3, "head": {"sha": "s1"}}},
            {"pr": 3, "head_sha": "s1"},
        ),
        (
            "check_run",
            {"check_run": {"head_sha": "s2", "pull_requests": [{"number": 4}]}},
            {"pr": 4, "head_sha": "s2"},
        ),
        ("issue_comment", {"issue": {"number": 5, "pull_request": {}}}, {"pr": 5}),
        ("issue_comment", {"issue": {"number": 6}}, {}),
        ("push", {"ref": "refs/heads/main"}, {}),
    ],
)
def test_payload_fields(event: str, payload: dict[str, object], fields: dict[str, object]) -> None:
    assert payload_fields(event, payload) == fields
