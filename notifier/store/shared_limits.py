"""Rate-limit buckets and access tokens shared by the processes of one database (``sql/*_027_shared_limits``).

Query-shaped, no policy: ``engine.shared_ratelimit`` does the bucket arithmetic, ``engine.shared_tokens``
decides when a token is fetched. Times are epoch seconds from the caller's clock.
"""

from __future__ import annotations

from notifier.store.common import dumps
from notifier.store.database import Database, Row


class SharedLimitRepository:
    db: Database

    async def locked_rate_buckets(self, buckets: list[tuple[str, float]], now: float) -> dict[str, tuple[float, float]]:
        """(tokens, time of the last refill) of each of ``buckets`` (name, capacity), by name, those that are new
        created full: one statement for all. Inside a transaction the rows stay locked until it ends (on
        PostgreSQL by the upsert, taken in the order given; on SQLite by the write transaction)."""
        params = {"buckets": dumps([[name, capacity] for name, capacity in buckets]), "now": now}
        rows = await self.db.fetch_all("rate_buckets_lock", params)
        return {row["bucket"]: (float(row["tokens"]), float(row["updated"])) for row in rows}

    async def save_rate_buckets(self, buckets: list[tuple[str, float, float]]) -> None:
        """(name, tokens, time of the last refill) of each bucket: one statement for all."""
        await self.db.execute("rate_buckets_save", {"buckets": dumps([list(bucket) for bucket in buckets])})

    async def shared_token(self, key: str) -> Row | None:
        return await self.db.fetch_one("shared_token_get", {"key": key})

    async def begin_token_fetch(
        self, key: str, holder: str, now: float, fetch_until: float, rejected: str | None
    ) -> bool:
        """Take the fetch lease of a token when it is missing, stale or ``rejected`` and nobody holds the
        lease; False when another process fetches it now or the stored one is good."""
        changed = await self.db.execute(
            "shared_token_begin_fetch",
            {"key": key, "holder": holder, "now": now, "fetch_until": fetch_until, "rejected": rejected or ""},
        )
        return changed > 0

    async def save_shared_token(self, key: str, holder: str, value: str, stale_at: float) -> bool:
        """Store the fetched token and end the lease; False when the lease had run out and was taken."""
        changed = await self.db.execute(
            "shared_token_save", {"key": key, "holder": holder, "value": value, "stale_at": stale_at}
        )
        return changed > 0

    async def abandon_token_fetch(self, key: str, holder: str) -> None:
        await self.db.execute("shared_token_abandon_fetch", {"key": key, "holder": holder})
