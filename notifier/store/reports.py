"""The figures of the reach report and the department assessment, read in a few grouped queries."""

from __future__ import annotations

from datetime import datetime

from notifier.store.common import dumps, iso
from notifier.store.database import Database, Row


class ReportRepository:
    db: Database

    async def report_notices(self, from_at: datetime, to_at: datetime, department: str | None) -> list[Row]:
        params = {"from_at": iso(from_at), "to_at": iso(to_at), "department": department}
        return await self.db.fetch_all("report_notices", params)

    async def report_rows(self, query: str, notice_ids: list[int]) -> list[Row]:
        """One of the grouped ``report_*`` queries over these notices."""
        return await self.db.fetch_all(query, {"ids": dumps(notice_ids)})

    async def area_names(self, codes: list[str]) -> dict[str, str]:
        rows = await self.db.fetch_all("report_area_names", {"codes": dumps(sorted(set(codes)))})
        return {row["code"]: row["name"] for row in rows}

    async def department_names(self) -> dict[str, str]:
        return {row["code"]: row["name"] for row in await self.db.fetch_all("report_departments")}
