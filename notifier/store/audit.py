"""The audit log: every entry is appended through :meth:`AuditRepository.audit`, which chains it (audit_chain)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier.domain.models import AuditEntry
from notifier.store.audit_chain import GENESIS, ChainResult, entry_hash, mask_detail, verify_pages
from notifier.store.common import decode_cursor, dumps, iso, now_iso, page
from notifier.store.database import Database, Row

AuditItem = tuple[str, str, object, dict[str, object] | None]  # action, object_type, object_id, detail

PAGE = 1000  # entries read at a time by the verifier and the CSV export


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    from_at: datetime | None = None  # inclusive
    to_at: datetime | None = None  # exclusive

    def params(self) -> dict[str, Any]:
        return {"actor": self.actor, "action": self.action, "from_at": iso(self.from_at), "to_at": iso(self.to_at)}


class AuditRepository:
    db: Database

    async def audit(
        self, actor: str, action: str, object_type: str, object_id: object, detail: dict[str, object] | None = None
    ) -> None:
        """Append to the audit log, inside the caller's transaction when there is one.

        Reading the last entry and inserting the next happen in one write transaction that holds the chain's
        lock (BEGIN IMMEDIATE on SQLite; a transaction advisory lock on PostgreSQL, where transactions run
        side by side), so writers in any number of tasks or processes extend a single chain.
        """
        await self.audit_many(actor, [(action, object_type, object_id, detail)])

    async def audit_many(self, actor: str, entries: Sequence[AuditItem]) -> None:
        """Append ``(action, object_type, object_id, detail)`` entries in order, as :meth:`audit` appends one,
        with one lock, one read of the chain's end and one batched insert (a bulk import's entries)."""
        if not entries:
            return
        async with self.db.transaction():
            await self.db.execute("lock_audit_chain")
            last = await self.db.fetch_one("last_audit")
            next_id, prev_hash = (1, GENESIS) if last is None else (last["id"] + 1, last["hash"])
            at = now_iso()
            rows: list[dict[str, Any]] = []
            for offset, (action, object_type, object_id, detail) in enumerate(entries):
                entry: dict[str, Any] = {
                    "id": next_id + offset,
                    "at": at,
                    "actor": actor,
                    "action": action,
                    "object_type": object_type,
                    "object_id": None if object_id is None else str(object_id),
                    "detail": dumps(mask_detail(object_type, detail or {})),
                    "prev_hash": prev_hash,
                }
                prev_hash = entry_hash(entry)
                rows.append({**entry, "hash": prev_hash})
            await self.db.execute_many("insert_audit", rows)

    async def list_audit(
        self, where: AuditFilter, cursor: str | None, limit: int
    ) -> tuple[list[AuditEntry], str | None]:
        params = {**where.params(), "after": decode_cursor(cursor) or 0, "limit": limit + 1}
        items, next_cursor = page(await self.db.fetch_all("find_audit", params), limit)
        return [audit_entry(row) for row in items], next_cursor

    async def audit_rows(self, where: AuditFilter, cursor: str | None = None) -> AsyncIterator[list[Row]]:
        """Matching entries as stored, a page at a time (keyset pages: no read stays open between them)."""
        after = decode_cursor(cursor) or 0
        while True:
            rows = await self.db.fetch_all("find_audit", {**where.params(), "after": after, "limit": PAGE})
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def verify_audit_chain(self) -> ChainResult:
        return await verify_pages(self.audit_rows(AuditFilter()))


def audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(**{**row, "detail": json.loads(row["detail"])})
