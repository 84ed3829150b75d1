"""The one narrow HTTP method: every request to GitHub, with bounded retries, goes through here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import gidgethub
import gidgethub.aiohttp

from bot.github.errors import (
    Forbidden,
    GitHubError,
    GitHubUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    Unauthorized,
    UnexpectedResponse,
    safe_path,
)
from bot.github.retry import DEFAULT_POLICY, RetryPolicy, next_delay, rate_limit_wait

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Status, headers and body of the final attempt."""

    status: int
    """HTTP status."""
    headers: Mapping[str, str]
    """Response headers (case-insensitive mapping from aiohttp)."""
    body: bytes
    """Body; empty when it was streamed to a file."""
    streamed: int = 0
    """Bytes written to the download file, when there was one."""


@dataclass(frozen=True, slots=True)
class Download:
    """Where a successful (200) body is streamed instead of kept in memory."""

    dest: Path
    """File to (over)write."""
    max_bytes: int
    """Abort with ResponseTooLarge beyond this many bytes."""


@dataclass(slots=True)
class TransportStats:
    """Counters tests and metrics read; mutated only by the transport."""

    attempts: int = 0
    """HTTP attempts made, retries included."""
    retries: int = 0
    """Attempts that were repeated after a failure."""
    waited: float = 0.0
    """Seconds slept between attempts."""


class Transport:
    """Sends HTTP requests over the process's session, retrying what is worth retrying."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.stats = TransportStats()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        allow_redirects: bool = True,
        download: Download | None = None,
    ) -> RawResponse:
        """Send one request, retrying 5xx, timeouts, 429 and secondary rate limits.

        Returns the last response (success or a final error status); raises
        GitHubUnavailable when no HTTP answer came back at all.
        """
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            self.stats.attempts += 1
            response, failure = await self._attempt(
                method, url, headers, body, allow_redirects, download
            )
            triple = (response.status, response.headers, response.body) if response else None
            delay = next_delay(attempt, triple, policy=self.policy, rng=self._rng, now=self.clock())
            if delay is None or waited + delay > self.policy.max_total_wait:
                if response is None:
                    raise GitHubUnavailable(
                        f"no answer after {attempt} attempts ({failure})", method=method, url=url
                    )
                return response
            log.warning(
                "github request failed, retrying",
                extra={
                    "method": method,
                    "path": safe_path(url),
                    "status": response.status if response else None,
                    "failure": failure,
                    "delay_s": round(delay, 2),
                    "attempt": attempt,
                },
            )
            self.stats.retries += 1
            self.stats.waited += delay
            waited += delay
            await self.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        allow_redirects: bool,
        download: Download | None,
    ) -> tuple[RawResponse | None, str]:
        """One attempt; (None, reason) when the connection or the timeout failed."""
        seconds = self.policy.download_timeout if download else self.policy.request_timeout
        try:
            async with self.session.request(
                method,
                url,
                headers=dict(headers),
                data=body or None,
                allow_redirects=allow_redirects,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as resp:
                if download is not None and resp.status == 200:
                    size = await _stream(resp, download, method, url)
                    return RawResponse(resp.status, resp.headers, b"", size), ""
                return RawResponse(resp.status, resp.headers, await resp.read()), ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Only the type: aiohttp messages may quote a URL with a signed token in its query.
            return None, type(exc).__name__


async def _stream(resp: aiohttp.ClientResponse, download: Download, method: str, url: str) -> int:
    written = 0
    with download.dest.open("wb") as sink:
        async for chunk in resp.content.iter_chunked(_CHUNK):
            written += len(chunk)
            if written > download.max_bytes:
                break
            sink.write(chunk)
    if written > download.max_bytes:
        download.dest.unlink(missing_ok=True)
        raise ResponseTooLarge(
            f"download exceeds {download.max_bytes} bytes", method=method, url=url
        )
    return written


def error_for_response(
    status: int,
    headers: Mapping[str, str],
    message: str,
    *,
    method: str,
    url: str,
    now: float,
    policy: RetryPolicy,
) -> GitHubError:
    """The typed error for a final non-success HTTP answer."""
    where: dict[str, Any] = {"status": status, "method": method, "url": url}
    if status >= 500:
        return GitHubUnavailable(message or "server error", **where)
    wait = rate_limit_wait(status, headers, message.encode(), now, policy)
    if wait is not None:
        return RateLimited(message or "rate limited", retry_after=wait, **where)
    kinds: dict[int, type[GitHubError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}
    kind = kinds.get(status, InvalidRequest if 400 <= status < 500 else UnexpectedResponse)
    return kind(message or f"HTTP {status}", **where)


def _message(exc: gidgethub.HTTPException) -> str:
    """GitHub's `message` field, or the status phrase when the body had none."""
    texts = [str(arg) for arg in exc.args if isinstance(arg, str) and arg]
    return "; ".join(texts) or str(getattr(exc.status_code, "phrase", ""))


class RetryingGitHubAPI(gidgethub.aiohttp.GitHubAPI):
    """gidgethub's client whose only I/O, `_request`, is the transport's `send`."""

    def __init__(
        self,
        transport: Transport,
        *,
        requester: str,
        base_url: str,
        cache: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(transport.session, requester, cache=cache, base_url=base_url)
        self.transport = transport

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        response = await self.transport.send(method, url, headers, body)
        return response.status, response.headers, response.body

    async def sleep(self, seconds: float) -> None:
        await self.transport.sleep(seconds)

    @contextlib.contextmanager
    def mapped_errors(self, method: str, url: str) -> Iterator[None]:
        """Turn gidgethub's HTTP exceptions into our GitHubError family."""
        try:
            yield
        except gidgethub.HTTPException as exc:
            raise error_for_response(
                int(exc.status_code),
                exc.headers,
                _message(exc),
                method=method,
                url=url,
                now=self.transport.clock(),
                policy=self.transport.policy,
            ) from None
