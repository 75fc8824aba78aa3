"""CAP alerts received and the area centroids their polygons and circles are matched against."""

from __future__ import annotations

import json
from collections.abc import Iterable

from notifier.store.common import now_iso
from notifier.store.database import Row
from notifier.store.notices import NoticeRepository


class CapRepository(NoticeRepository):
    async def find_cap_alert(self, sender: str, identifier: str) -> Row | None:
        return await self.db.fetch_one("find_cap_alert", {"sender": sender, "identifier": identifier})

    async def record_cap_alert(
        self, *, sender: str, identifier: str, sent: str, msg_type: str, notice_id: int, department: str
    ) -> None:
        """Remember an alert and the notice it made or acted on (inside the caller's transaction)."""
        await self.db.execute(
            "insert_cap_alert",
            {
                "sender": sender,
                "identifier": identifier,
                "sent": sent,
                "msg_type": msg_type,
                "notice_id": notice_id,
                "department": department,
                "now": now_iso(),
            },
        )

    async def set_notice_cap(self, notice_id: int, alert: dict[str, object]) -> None:
        await self.db.execute("set_notice_cap", {"id": notice_id, "cap": json.dumps(alert, ensure_ascii=False)})

    async def notice_cap(self, notice_id: int) -> dict[str, object] | None:
        """The CAP alert a notice came from, as stored; None for a notice made otherwise."""
        row = await self.db.fetch_one("get_notice", {"id": notice_id})
        if row is None or not row.get("cap"):
            return None
        alert: dict[str, object] = json.loads(row["cap"])
        return alert

    async def area_codes(self) -> list[str]:
        return [str(row["code"]) for row in await self.db.fetch_all("area_codes", {})]

    async def area_centroids(self) -> dict[str, tuple[float, float]]:
        rows = await self.db.fetch_all("area_centroids", {})
        return {str(row["code"]): (float(row["latitude"]), float(row["longitude"])) for row in rows}

    async def upsert_area_centroids(self, rows: Iterable[tuple[str, float, float, str]]) -> None:
        """(code, latitude, longitude, source) of areas already stored."""
        async with self.db.transaction():
            for code, latitude, longitude, source in rows:
                await self.db.execute(
                    "upsert_area_centroid",
                    {"code": code, "latitude": latitude, "longitude": longitude, "source": source},
                )
