"""Area deliveries as the engine sees them: one (notice, area, kind) for kinds ``bot`` and ``bulletin``.

The same queue rules as ``DeliveryRepository`` (lease on claim, conditional writes by the leasing
worker), on the ``area_deliveries`` table; see ``sql/sqlite_003_area_deliveries.sql`` for why it
is a table of its own. Cancelling, expiring and lease recovery of a notice's area deliveries run
inside the corresponding ``DeliveryRepository`` methods.
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

    async def claim_area_deliveries(self, alias: str, worker: str, now: float, lease: float, limit: int) -> list[Row]:
        """Lease up to ``limit`` due area deliveries of one alias, most urgent first."""
        return await self.db.fetch_all(
            "claim_area_deliveries",
            {
                "alias": alias,
                "worker": worker,
                "now": now,
                "now_iso": now_iso(),
                "lease_until": now + lease,
                "limit": limit,
            },
        )

    async def record_area_sent(self, worker: str, sent: list[tuple[int, str, float | None, float | None]]) -> None:
        """(delivery id, provider message id, first poll at, poll until) per sent message; None: no polling."""
        stamp = now_iso()
        await self.db.execute_many(
            "record_area_sent",
            [
                {"id": i, "provider_message_id": p, "poll_at": a, "poll_until": u, "worker": worker, "now_iso": stamp}
                for i, p, a, u in sent
            ],
        )

    async def requeue_area_delivery(self, delivery_id: int, worker: str, due_at: float, alias: str, error: str) -> None:
        await self.db.execute(
            "requeue_area_delivery",
            {
                "id": delivery_id,
                "worker": worker,
                "due_at": due_at,
                "alias": alias,
                "error": error,
                "now_iso": now_iso(),
            },
        )

    async def close_area_delivery(
        self, delivery_id: int, *, state: str, from_state: str, error: str | None, worker: str | None
    ) -> bool:
        """Move an area delivery to a final state; False if it was not in ``from_state``."""
        changed = await self.db.execute(
            "close_area_delivery",
            {
                "id": delivery_id,
                "state": state,
                "from_state": from_state,
                "error": error,
                "worker": worker,
                "now_iso": now_iso(),
            },
        )
        return changed > 0

    async def claim_area_polls(self, now: float, next_poll: float, limit: int) -> list[Row]:
        """Sent area deliveries whose job state is due to be asked; their next poll moves to ``next_poll``."""
        return await self.db.fetch_all("claim_area_polls", {"now": now, "next_poll": next_poll, "limit": limit})

    async def mark_area_delivered(self, delivery_id: int) -> bool:
        return await self.db.execute("mark_area_delivered", {"id": delivery_id, "now_iso": now_iso()}) > 0

    async def stop_area_poll(self, delivery_id: int, error: str) -> None:
        """Stop asking about a job that stayed pending too long; the delivery stays ``sent``."""
        await self.db.execute("stop_area_poll", {"id": delivery_id, "error": error, "now_iso": now_iso()})

    async def area_delivery_counts(self, notice_id: int) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for row in await self.db.fetch_all("area_delivery_counts", {"notice_id": notice_id}):
            counts.setdefault(row["channel"], {})[row["state"]] = int(row["n"])
        return counts

    async def list_area_deliveries(self, notice_id: int) -> list[Row]:
        return await self.db.fetch_all("list_area_deliveries", {"notice_id": notice_id})
