"""Deliveries whose target is an area (kinds ``bot`` and ``bulletin``): planning their rows, and asking after
the print jobs of the sent ones.

They share the ``deliveries`` queue with resident deliveries (``area_code`` set instead of ``subscriber_id``,
see ``sql/sqlite_024_one_delivery_queue.sql``): claiming, recording, requeueing, closing, cancelling,
expiring and lease recovery are ``DeliveryRepository``'s, the same for both targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from notifier.store.common import dumps, now_iso
from notifier.store.database import Database, Row


class AreaDeliveryRepository:
    db: Database

    async def areas_in_target(self, codes: Iterable[str]) -> list[Row]:
        """(code, level) of every area at or under ``codes``; every area when ``codes`` is empty."""
        return await self.db.fetch_all("areas_in_target", {"codes": dumps(sorted(set(codes)))})

    async def insert_area_deliveries(self, notice_id: int, worker: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Queue area deliveries while ``worker`` still fans the approved notice out; repeats are no-ops."""
        stamp = now_iso()
        await self.db.execute_many(
            "insert_area_delivery",
            [{**row, "notice_id": notice_id, "worker": worker, "now_iso": stamp} for row in rows],
        )

    async def claim_area_polls(self, now: float, next_poll: float, limit: int) -> list[Row]:
        """Sent area deliveries whose job state is due to be asked; their next poll moves to ``next_poll``."""
        return await self.db.fetch_all("claim_area_polls", {"now": now, "next_poll": next_poll, "limit": limit})

    async def stop_area_poll(self, delivery_id: int, error: str) -> None:
        """Stop asking about a job that stayed pending too long; the delivery stays ``sent``."""
        await self.db.execute("stop_area_poll", {"id": delivery_id, "error": error, "now_iso": now_iso()})

    async def list_area_deliveries(self, notice_id: int) -> list[Row]:
        return await self.db.fetch_all("list_area_deliveries", {"notice_id": notice_id})
