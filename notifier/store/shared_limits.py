"""Rate-limit buckets and access tokens shared by the processes of one database (``sql/*_027_shared_limits``).

Query-shaped, no policy: ``engine.shared_ratelimit`` does the bucket arithmetic, ``engine.shared_tokens``
decides when a token is fetched. Times are epoch seconds from the caller's clock.
"""

from __future__ import annotations

from notifier.store.database import Database, Row


class SharedLimitRepository:
    db: Database

    async def locked_rate_bucket(self, bucket: str, capacity: float, now: float) -> tuple[float, float]:
        """(tokens, time of the last refill) of a bucket, created full when new; inside a transaction the
        row stays locked until it ends (on PostgreSQL by FOR UPDATE, on SQLite by the write transaction)."""
        await self.db.execute("rate_bucket_create", {"bucket": bucket, "tokens": capacity, "now": now})
        row = await self.db.fetch_one("rate_bucket_locked", {"bucket": bucket})
        assert row is not None
        return float(row["tokens"]), float(row["updated"])

    async def save_rate_bucket(self, bucket: str, tokens: float, updated: float) -> None:
        await self.db.execute("rate_bucket_save", {"bucket": bucket, "tokens": tokens, "updated": updated})

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
