"""Structured JSON-lines logs carrying delivery context; every line passes the scrubber."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from checks.scrub import scrub

#: The only context keys a log line may carry (so no header or token can ride along).
CONTEXT_FIELDS = ("delivery_id", "event", "action", "installation_id", "repo", "pr", "head_sha")

_context: ContextVar[Mapping[str, object]] = ContextVar("log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields (None values are skipped) to every log line written inside the block."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def payload_fields(event: str, payload: Mapping[str, Any]) -> dict[str, object]:
    """The pull request number and head sha a webhook payload is about, when it says."""
    pull = payload.get("pull_request")
    if isinstance(pull, dict):
        return {"pr": pull.get("number"), "head_sha": _get(pull, "head", "sha")}
    if event == "check_run" or event == "check_suite":
        run = payload.get(event)
        pulls = run.get("pull_requests") if isinstance(run, dict) else None
        number = pulls[0].get("number") if isinstance(pulls, list) and pulls else None
        return {"pr": number, "head_sha": _get(payload, event, "head_sha")}
    issue = payload.get("issue")
    if isinstance(issue, dict) and "pull_request" in issue:
        return {"pr": issue.get("number")}
    return {}


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (explicit `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class ScrubFilter(logging.Filter):
    """Runs the rendered message and any traceback through the scrubber."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._known = tuple(known_secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage(), self._known)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(text, self._known)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_text:
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    *, level: str = "INFO", stream: IO[str] | None = None, known_secrets: Iterable[str] = ()
) -> logging.Handler:
    """Send every logger's records, as scrubbed JSON lines, to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(ScrubFilter(known_secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic announces each of its plugins at INFO on every start; keep only its migrations.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


def _get(payload: Mapping[str, Any], *keys: str) -> object:
    value: object = payload
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
