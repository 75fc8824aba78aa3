"""Published notices: what the public pages (/public/notices), the Atom feeds and the kiosks show.

A notice is published once approved when it is public (``public`` or the channel kind ``feed``); it stays
in the public archive when expired and leaves it when cancelled. Nothing personal is read here: notices
only, never residents, deliveries or rosters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notifier.domain.models import Notice
from notifier.store.cap import CapRepository
from notifier.store.common import iso, now_iso


@dataclass(frozen=True)
class PublishedNotice:
    notice: Notice
    published_at: datetime


@dataclass(frozen=True)
class PublicFilter:
    domain: str | None = None
    department: str | None = None
    area: str | None = None
    published_from: datetime | None = None
    published_before: datetime | None = None
    alerts: bool = False  # only alerts: a severity above info, or made from a CAP alert


class PublicRepository(CapRepository):
    async def _published(self, rows: list[dict[str, object]]) -> list[PublishedNotice]:
        out = []
        for row in rows:
            published_at = datetime.fromisoformat(str(row.pop("published_at")))
            out.append(PublishedNotice(await self._notice_from_row(row, with_counts=False), published_at))
        return out

    async def list_published(self, where: PublicFilter, *, limit: int, offset: int = 0) -> list[PublishedNotice]:
        rows = await self.db.fetch_all(
            "list_published_notices",
            {
                "domain": where.domain,
                "department": where.department,
                "area": where.area,
                "from": iso(where.published_from),
                "to": iso(where.published_before),
                "alerts": int(where.alerts),
                "limit": limit,
                "offset": offset,
            },
        )
        return await self._published(rows)

    async def get_published(self, notice_id: int) -> PublishedNotice | None:
        rows = await self.db.fetch_all("get_published_notice", {"id": notice_id})
        found = await self._published(rows)
        return found[0] if found else None

    async def active_public_notices(self, area: str, *, limit: int = 50) -> list[PublishedNotice]:
        rows = await self.db.fetch_all("list_active_public_notices", {"area": area, "now": now_iso(), "limit": limit})
        return await self._published(rows)
