"""App authentication: the short-lived App JWT and cached installation tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import cachetools
import jwt

from bot.github.models import InstallationToken
from bot.github.transport import Clock

#: GitHub rejects JWTs issued in the future; backdating absorbs clock drift.
JWT_BACKDATE_S = 60
#: GitHub accepts at most 10 minutes of lifetime; stay under it.
JWT_LIFETIME_S = 9 * 60
#: Mint a new JWT this long before the current one expires.
JWT_REFRESH_MARGIN_S = 60
#: Stop using an installation token this long before it expires (a long job may outlive it).
TOKEN_REFRESH_MARGIN_S = 5 * 60


def make_app_jwt(app_id: str, private_key: str, now: float) -> tuple[str, float]:
    """A signed RS256 App JWT and its expiry (Unix time)."""
    issued = int(now) - JWT_BACKDATE_S
    expires = int(now) + JWT_LIFETIME_S
    encoded = jwt.encode({"iat": issued, "exp": expires, "iss": app_id}, private_key, "RS256")
    return encoded, float(expires)


class AppJwt:
    """Hands out the App JWT, re-signing it shortly before it expires."""

    def __init__(self, app_id: str, private_key: str, *, clock: Clock = time.time) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._jwt = ""
        self._expires = 0.0

    def __repr__(self) -> str:
        return f"AppJwt(app_id={self.app_id!r})"

    def current(self) -> str:
        """A JWT valid for at least JWT_REFRESH_MARGIN_S more seconds."""
        now = self._clock()
        if now >= self._expires - JWT_REFRESH_MARGIN_S:
            self._jwt, self._expires = make_app_jwt(self.app_id, self._private_key, now)
        return self._jwt


Mint = Callable[[int], Awaitable[InstallationToken]]


class InstallationTokens:
    """Per-installation token cache: a token is reused until shortly before its `expires_at`."""

    def __init__(
        self,
        mint: Mint,
        *,
        clock: Clock = time.time,
        margin_s: float = TOKEN_REFRESH_MARGIN_S,
        maxsize: int = 1024,
    ) -> None:
        self._mint = mint
        self._margin = margin_s
        self._cache: cachetools.TLRUCache[int, InstallationToken] = cachetools.TLRUCache(
            maxsize, ttu=self._usable_until, timer=clock
        )
        self._locks: dict[int, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"InstallationTokens(cached={len(self._cache)})"

    def _usable_until(self, _key: int, value: InstallationToken, _now: float) -> float:
        return value.expires_at - self._margin

    async def token(self, installation_id: int) -> str:
        """A token for `installation_id`, minted only when none is cached and fresh."""
        cached = self._cache.get(installation_id)
        if cached is not None:
            return cached.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # concurrent jobs of one installation share one mint
            cached = self._cache.get(installation_id)
            if cached is None:
                cached = await self._mint(installation_id)
                self._cache[installation_id] = cached
            return cached.token

    def forget(self, installation_id: int) -> None:
        """Drop a token GitHub refused (revoked, or the installation changed)."""
        self._cache.pop(installation_id, None)
