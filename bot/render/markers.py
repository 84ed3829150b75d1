"""Hidden markers that let the bot find and edit its own comments instead of posting again."""

from __future__ import annotations

import re
from collections.abc import Iterable

SUMMARY_MARKER_NAME = "connector-gate:summary"
SUMMARY_MARKER = f"<!-- {SUMMARY_MARKER_NAME} -->"
_FINDING_MARKER = re.compile(r"<!-- connector-gate:finding:(?P<fp>[0-9a-f]{6,64}) -->")


def finding_marker(fingerprint: str) -> str:
    """The marker of one finding's review comment (only hex digits survive, so it stays inert)."""
    safe = re.sub(r"[^0-9a-f]", "", fingerprint.lower())[:64]
    return f"<!-- connector-gate:finding:{safe} -->"


def is_summary_comment(body: str) -> bool:
    """Whether a comment is the bot's sticky summary."""
    return SUMMARY_MARKER in body


def commented_fingerprints(bodies: Iterable[str]) -> frozenset[str]:
    """Fingerprints already carried by existing review comments."""
    return frozenset(m.group("fp") for body in bodies for m in _FINDING_MARKER.finditer(body))
