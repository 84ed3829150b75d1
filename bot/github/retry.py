"""Pure retry policy: which responses deserve another attempt, and after how long."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

#: Server errors worth retrying; other 5xx (501, 505...) will not get better.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})

#: GitHub documents no header for some secondary limits, only "wait at least a minute".
SECONDARY_LIMIT_MARKER = b"secondary rate limit"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client insists before giving up on GitHub."""

    max_attempts: int = 5
    """Attempts per request, the first one included."""
    base_delay: float = 1.0
    """Backoff before the second attempt; doubles for each further attempt."""
    max_delay: float = 30.0
    """Ceiling of one backoff delay (rate-limit waits are bounded by `max_total_wait` only)."""
    max_total_wait: float = 120.0
    """Total sleeping allowed for one request; a longer wait raises instead."""
    secondary_limit_delay: float = 60.0
    """Wait after a secondary rate limit that names no delay."""
    request_timeout: float = 30.0
    """Seconds for one API attempt, connection included."""
    download_timeout: float = 300.0
    """Seconds for one download attempt (tarballs)."""


DEFAULT_POLICY = RetryPolicy()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _as_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_wait(
    status: int, headers: Mapping[str, str], body: bytes, now: float, policy: RetryPolicy
) -> float | None:
    """Seconds GitHub asks us to wait before retrying; None when this is no rate limit."""
    if status not in (403, 429):
        return None
    lowered = _lower(headers)
    retry_after = _as_float(lowered.get("retry-after"))
    if retry_after is not None:
        return max(retry_after, 0.0)
    reset = _as_float(lowered.get("x-ratelimit-reset"))
    if lowered.get("x-ratelimit-remaining") == "0" and reset is not None:
        return max(reset - now, 0.0) + 1.0
    if SECONDARY_LIMIT_MARKER in body.lower():
        return policy.secondary_limit_delay
    return 0.0 if status == 429 else None


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so it is never ~0."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_delay(
    attempt: int,
    response: tuple[int, Mapping[str, str], bytes] | None,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    now: float,
) -> float | None:
    """Delay before attempt `attempt + 1`, or None when the outcome is final.

    `response` is None when the attempt failed without an HTTP answer (timeout, connection
    reset), which is always worth retrying.
    """
    if attempt >= policy.max_attempts:
        return None
    if response is None:
        return backoff_delay(attempt, policy, rng)
    status, headers, body = response
    if status in RETRYABLE_STATUSES:
        return backoff_delay(attempt, policy, rng)
    wait = rate_limit_wait(status, headers, body, now, policy)
    if wait is None:
        return None
    return wait if wait > 0 else backoff_delay(attempt, policy, rng)
