"""What the console's channels page reads: per alias, the queue, the sends per minute and the errors."""

from __future__ import annotations

from datetime import datetime

from notifier.store.common import iso
from notifier.store.database import Database, Row


class ChannelStatsRepository:
    db: Database

    async def channel_queue(self) -> list[Row]:
        """(alias, state, n) of the deliveries queued or being sent, residents' and areas'."""
        return await self.db.fetch_all("channel_queue")

    async def channel_sent_per_minute(self, since: datetime) -> list[Row]:
        """(alias, minute "YYYY-MM-DDTHH:MM" in UTC, n) of the messages sent since ``since``."""
        return await self.db.fetch_all("channel_sent_per_minute", {"since": iso(since)})

    async def channel_errors(self, since: datetime) -> list[Row]:
        """(alias, state, last_error, n) of the deliveries changed since ``since`` that carry an error."""
        return await self.db.fetch_all("channel_errors", {"since": iso(since)})
