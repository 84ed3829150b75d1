"""X-Hub-Signature-256 signing and verification (pure; no I/O)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header GitHub sends for `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signature_valid(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True if `header` is a SHA-256 signature of `body` under any of `secrets`.

    Several secrets are accepted so a secret can be rotated without dropping deliveries.
    Every secret is tried (no early exit) and compared in constant time.
    """
    if not header or not header.startswith(PREFIX):
        return False
    provided = header[len(PREFIX) :].strip().lower()
    matches = [
        hmac.compare_digest(sign(body, secret)[len(PREFIX) :], provided) for secret in secrets
    ]
    return any(matches)
