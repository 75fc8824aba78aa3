"""The access-token cache shared by the WeChat Official Account and WeCom adapters of a process.

Both platforms authenticate every call with an ``access_token`` fetched from a token endpoint:

    WeChat Official Account   POST /cgi-bin/stable_token   (appid + secret)
        https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
    WeCom                     GET  /cgi-bin/gettoken        (corpid + corpsecret, one token per app)
        https://developer.work.weixin.qq.com/document/path/91039

Both say: cache the token (the endpoints are frequency-limited), honour ``expires_in`` (7200 s today,
may change), and fetch again when a call answers "invalid / expired token" (40001 / 40014 / 42001).

A ``TokenCache`` is the narrow interface an adapter needs, keyed at construction (one cache per appid
or per corpid + agent secret):

    await cache.token()              a valid token; fetched when missing or about to expire
    await cache.refresh(rejected)    a new token, because the platform rejected ``rejected``

``refresh`` is a compare-and-swap: when another caller already replaced the rejected token, the
replacement is returned and nothing is fetched, so a hundred workers hitting 42001 at once cause one
fetch. ``MemoryTokenCache`` implements it for one process (single-flight under an ``asyncio.Lock``);
the service hands its adapters ``notifier.engine.shared_tokens.DatabaseTokenCaches`` instead, whose caches
keep each token in a database row, so the processes sharing a database fetch one token between them.

``TokenCaches`` holds one process's caches by key, so two aliases of one account (say, two templates
of the same appid) share one token: create it once per process where the channels are built and call
each adapter's ``use_token_caches(caches)``. It is an object passed around, never a module global.

How many refreshes a send may cause is the adapter's business: each adapter refreshes at most once per
``send`` call and never loops. A fetch that fails raises ``TokenError`` carrying the adapter's result
(``Retry`` for a busy platform or a network problem, ``Failed`` for a wrong appid or secret).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from channels.base import ChannelSetup, Failed, Retry
from notifier.domain.text import ascii_digits

DEFAULT_MARGIN = 120.0  # seconds before expiry at which a cached token counts as stale
DEFAULT_LIFETIME = 7200.0  # seconds: both platforms' documented ``expires_in``
MAX_LIFETIME = 86400.0  # seconds: no token is kept longer, whatever the endpoint says


@dataclass(frozen=True)
class IssuedToken:
    """What a token endpoint answered: the token and its lifetime in seconds (``expires_in``)."""

    value: str
    expires_in: float


class TokenError(Exception):
    """A token could not be fetched; ``result`` is what the messages of the send become."""

    def __init__(self, result: Retry | Failed) -> None:
        super().__init__(result.reason if isinstance(result, Retry) else f"{result.reason_code}: {result.detail}")
        self.result = result


# Fetch a token from the platform; ``force`` asks for a new one even if the current one is still valid
# (stable_token's ``force_refresh``; WeCom's gettoken has no such switch and ignores it).
TokenFetcher = Callable[[bool], Awaitable[IssuedToken]]


class TokenCache(Protocol):
    async def token(self) -> str:
        """A token believed valid: the cached one, or a freshly fetched one."""
        ...

    async def refresh(self, rejected: str) -> str:
        """A token other than ``rejected``, fetching one only if ``rejected`` is still the cached token."""
        ...


class SingleFlightTokenCache:
    """What the token caches share: the token kept in memory until it goes stale, and fetches single-flight
    under an ``asyncio.Lock``, ``refresh`` a compare-and-swap. Where a missing or rejected token comes from
    is the subclass's ``_obtain``: the endpoint (``MemoryTokenCache``), or a row every process shares
    (``notifier.engine.shared_tokens``).

    ``can_force`` says whether the endpoint can be asked for a new token while the current one is valid
    (stable_token can, WeCom's gettoken cannot).
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        can_force: bool = True,
    ) -> None:
        self._fetch = fetch
        self._margin, self._clock, self._can_force = margin, clock, can_force
        self._lock = asyncio.Lock()
        self._value: str | None = None
        self._stale_at = 0.0
        self.fetches = 0  # how many times this process called the endpoint (for metrics and tests)

    def _valid(self) -> str | None:
        return self._value if self._value is not None and self._clock() < self._stale_at else None

    async def token(self) -> str:
        current = self._valid()
        if current is not None:
            return current
        async with self._lock:
            current = self._valid()
            if current is not None:
                return current
            return await self._obtain(rejected=None)

    async def refresh(self, rejected: str) -> str:
        async with self._lock:
            current = self._valid()
            if current is not None and current != rejected:
                return current
            return await self._obtain(rejected)

    async def _obtain(self, rejected: str | None) -> str:
        """A token other than ``rejected``, called under the lock when none valid is in memory."""
        raise NotImplementedError

    async def _fetch_new(self, rejected: str | None) -> IssuedToken:
        """A token from the endpoint."""
        self.fetches += 1
        issued = await self._fetch(False)
        if rejected is not None and issued.value == rejected and self._can_force:
            # The platform still hands out the token it refuses ("not latest"): ask for a new one, once.
            self.fetches += 1
            issued = await self._fetch(True)
        return issued

    def _stale_at_of(self, issued: IssuedToken) -> float:
        """When a token just fetched goes stale, on this cache's clock (``lifetime`` from now)."""
        return self._clock() + lifetime(issued, self._margin)

    def _keep(self, value: str, stale_at: float) -> str:
        self._value, self._stale_at = value, stale_at
        return value


def expires_in_of(value: object) -> float:
    """The lifetime an endpoint's ``expires_in`` gives a token: a positive number of seconds (or a string of
    digits), at most ``MAX_LIFETIME``; anything else (absent, 0, negative, NaN, text) is read as ``DEFAULT_LIFETIME``,
    so a malformed answer neither makes every send fetch a token nor keeps one for ever."""
    if isinstance(value, str) and ascii_digits(value.strip()):
        value = int(value)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < float("inf"):
        return DEFAULT_LIFETIME
    return min(float(value), MAX_LIFETIME)


def lifetime(issued: IssuedToken, margin: float) -> float:
    """Seconds a token is used before it is fetched again: ``margin`` s before it expires, but at least half
    its lifetime, so a short-lived token never makes every call fetch."""
    return max(issued.expires_in - margin, issued.expires_in / 2)


class MemoryTokenCache(SingleFlightTokenCache):
    """One process's cache of one token, fetched from the endpoint and refreshed ``margin`` s before expiry.
    ``clock`` is monotonic seconds (injectable for tests)."""

    async def _obtain(self, rejected: str | None) -> str:
        issued = await self._fetch_new(rejected)
        return self._keep(issued.value, self._stale_at_of(issued))


class TokenCaches:
    """One process's token caches, one per key ("wechat:<appid>", "wecom:<corpid>:<agentid>"); a subclass
    changes where a new cache keeps its token (``_new``)."""

    def __init__(self, *, margin: float = DEFAULT_MARGIN, clock: Callable[[], float] = time.monotonic) -> None:
        self._margin = margin
        self._clock = clock
        self._caches: dict[str, SingleFlightTokenCache] = {}

    def get(self, key: str, fetch: TokenFetcher, *, can_force: bool = True) -> SingleFlightTokenCache:
        """The cache for ``key``; created with ``fetch`` (the adapter's own fetcher) by the first adapter that
        asks."""
        cache = self._caches.get(key)
        if cache is None:
            cache = self._caches[key] = self._new(key, fetch, can_force)
        return cache

    def _new(self, key: str, fetch: TokenFetcher, can_force: bool) -> SingleFlightTokenCache:
        return MemoryTokenCache(fetch, margin=self._margin, clock=self._clock, can_force=can_force)


__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_MARGIN",
    "MAX_LIFETIME",
    "IssuedToken",
    "MemoryTokenCache",
    "SingleFlightTokenCache",
    "TokenCache",
    "TokenCaches",
    "TokenError",
    "TokenFetcher",
    "expires_in_of",
]


def shared_token_caches(setup: ChannelSetup) -> TokenCaches:
    """The token caches every adapter of this process shares (kept in the channel setup)."""
    caches = setup.shared.setdefault("token_caches", TokenCaches())
    assert isinstance(caches, TokenCaches)
    return caches
