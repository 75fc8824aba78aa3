"""WeChat and WeCom access tokens shared by every process of one database (``channels.wechat_token``).

``DatabaseTokenCaches`` replaces the process's ``TokenCaches`` where the service builds its channels: each
account's token lives in one row of ``shared_tokens``. A process that finds it missing, stale, or equal to
the token a platform just rejected takes the row's fetch lease (one conditional upsert), calls the token
endpoint outside any transaction, and stores what it got; the others find the lease held and read the row
again until the new token is there (or the lease ran out: then one of them fetches). So two processes, or
ten, fetch one token where one process would: the endpoints are frequency-limited, and a new stable token
may end the old one early. Inside a process the calls are single-flight under a lock, as in
``MemoryTokenCache``, and a token read from the row is kept in memory until it goes stale.

Times are epoch seconds (``clock``): the rows are read by processes on other hosts, whose monotonic clocks
mean nothing here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from channels.wechat_token import (
    DEFAULT_MARGIN,
    MemoryTokenCache,
    SingleFlightTokenCache,
    TokenCaches,
    TokenFetcher,
)
from notifier.store import Store

log = logging.getLogger(__name__)

FETCH_LEASE = 30.0
"""Seconds one process may take to fetch a token before another may try."""

WAIT_STEP = 0.05
"""Seconds between two reads of the row while another process fetches."""


class DatabaseTokenCache(SingleFlightTokenCache):
    def __init__(
        self,
        store: Store,
        key: str,
        holder: str,
        fetch: TokenFetcher,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
        can_force: bool = True,
    ) -> None:
        super().__init__(fetch, margin=margin, clock=clock, can_force=can_force)
        self.store, self.key, self.holder = store, key, holder

    async def _obtain(self, rejected: str | None) -> str:
        """The account's token from the row, fetched by this process when it holds the fetch lease."""
        while True:
            row = await self.store.shared_token(self.key)
            now = self._clock()
            if row is not None and row["value"] and float(row["stale_at"]) > now and row["value"] != rejected:
                return self._keep(str(row["value"]), float(row["stale_at"]))
            if await self.store.begin_token_fetch(self.key, self.holder, now, now + FETCH_LEASE, rejected):
                return await self._fetch_and_store(rejected)
            await asyncio.sleep(WAIT_STEP)  # another process is fetching: its token is in the row shortly

    async def _fetch_and_store(self, rejected: str | None) -> str:
        try:
            issued = await self._fetch_new(rejected)
        except BaseException:
            await asyncio.shield(self.store.abandon_token_fetch(self.key, self.holder))
            raise
        stale_at = self._stale_at_of(issued)
        if not await self.store.save_shared_token(self.key, self.holder, issued.value, stale_at):
            log.warning("token %s: the fetch took longer than its lease; kept for this process only", self.key)
        return self._keep(issued.value, stale_at)


class DatabaseTokenCaches(TokenCaches):
    """The token caches of one process, each backed by its row in the shared database."""

    def __init__(
        self, store: Store, holder: str, *, margin: float = DEFAULT_MARGIN, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        self.store, self.holder = store, holder

    def _new(self, key: str, fetch: TokenFetcher, can_force: bool) -> DatabaseTokenCache:
        return DatabaseTokenCache(
            self.store, key, self.holder, fetch, margin=self._margin, clock=self._clock, can_force=can_force
        )


__all__ = ["DatabaseTokenCache", "DatabaseTokenCaches", "MemoryTokenCache"]
