"""X-Hub-Signature-256 signing and verification (pure; no I/O)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="

#: A SHA-256 digest in hexadecimal.
_HEX_DIGITS = 64


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header GitHub sends for `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signature_valid(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True if `header` is a SHA-256 signature of `body` under any of `secrets`.

    Several secrets are accepted so a secret can be rotated without dropping deliveries.
    Every secret is tried (no early exit) and compared in constant time.
    """
    provided = _digest_of(header)
    if provided is None:
        return False
    # hmac.digest: OpenSSL's one-shot HMAC, without an HMAC object per request.
    matches = [
        hmac.compare_digest(hmac.digest(secret.encode("utf-8"), body, "sha256"), provided)
        for secret in secrets
    ]
    return any(matches)


def _digest_of(header: str | None) -> bytes | None:
    """The 32 bytes a `sha256=<64 hex digits>` header carries, or None."""
    if not header or not header.startswith(PREFIX):
        return None
    hex_digits = header[len(PREFIX) :].strip()
    if len(hex_digits) != _HEX_DIGITS:
        return None
    try:
        # Spaces between the digits make fewer than 32 bytes, which match no digest.
        return bytes.fromhex(hex_digits)
    except ValueError:
        return None
