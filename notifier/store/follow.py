"""What the console's follow page shows of a notice under way: its deliveries per town, its failures by
reason, its printouts per village. Counts per channel and state and the reach come with the notice itself
(``get_notice``), as ``GET /api/v1/notices/{id}`` shows them."""

from __future__ import annotations

from notifier.store.database import Database, Row


class FollowRepository:
    db: Database

    async def notice_towns(self, notice_id: int) -> list[Row]:
        return await self.db.fetch_all("console_notice_towns", {"notice_id": notice_id})

    async def notice_failures(self, notice_id: int) -> list[Row]:
        return await self.db.fetch_all("console_notice_failures", {"notice_id": notice_id})

    async def notice_printouts(self, notice_id: int) -> list[Row]:
        return await self.db.fetch_all("console_notice_printouts", {"notice_id": notice_id})

    async def notice_waiting(self, notice_id: int) -> int:
        return int(await self.db.fetch_value("console_notice_waiting", {"notice_id": notice_id}) or 0)
