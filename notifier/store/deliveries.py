"""The delivery queue and fan-out as the engine sees them: query-shaped methods, no policy.

Every method is one named SQL block (or a few in one transaction). Queue timing is epoch seconds;
callers pass ``now`` so tests can drive the clock. Deciding what to do (retry, fall back, expire)
is the engine's job; this module only moves rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from notifier.store.common import dumps, iso, now_iso
from notifier.store.database import Database, Row


def iso_at(now: float) -> str:
    """An epoch time in the store's timestamp format, for comparing with send_at and expires_at."""
    return iso(datetime.fromtimestamp(now, UTC)) or ""


class DeliveryRepository:
    db: Database

    # fan-out

    async def claim_notice_for_fanout(self, worker: str, now: float, lease: float) -> Row | None:
        """An approved, due notice no live process is fanning out, leased to ``worker``.

        A read on the reader connection first: when no notice is due (nearly every planner pass) the
        write lock is not taken."""
        params = {"worker": worker, "now": now, "now_iso": iso_at(now), "lease_until": now + lease}
        if await self.db.fetch_value("notice_due_for_fanout", params) is None:
            return None
        return await self.db.fetch_one("claim_notice_for_fanout", params)

    async def codes_to_ids(self, kind: str, codes: list[str]) -> list[int]:
        """Ids of group (kind "group") or topic codes; unknown codes are dropped."""
        if not codes:
            return []
        rows = await self.db.fetch_all(f"{kind}_ids", {"codes": dumps(codes)})
        return [int(r["id"]) for r in rows]

    async def chunk_end(self, after: int, size: int) -> int | None:
        """The highest subscriber id among the next ``size`` ids after ``after`` (None at the end)."""
        value = await self.db.fetch_value("fanout_chunk_end", {"after": after, "limit": size})
        return None if value is None else int(value)

    async def stage_chunk(self, params: Mapping[str, Any]) -> None:
        """Fill the per-connection staging tables with one chunk's matched residents and channels.

        Call inside a transaction; the staging tables live on the writing connection.
        """
        for name in ("fanout_create_matched", "fanout_create_chosen", "fanout_clear_matched", "fanout_clear_chosen"):
            await self.db.execute(name)
        await self.db.execute("fanout_match", params)
        await self.db.execute("fanout_choose", params)

    async def staged_counts(self) -> tuple[int, int]:
        """(residents matched, residents with a chosen channel) of the staged chunk."""
        row = await self.db.fetch_one("fanout_chunk_counts")
        assert row is not None
        return int(row["matched"]), int(row["reached"])

    async def staged_summary(self) -> list[Row]:
        return await self.db.fetch_all("fanout_chunk_summary")

    async def staged_skips(self, channels: str) -> list[Row]:
        """(town, reason, n): why the staged chunk's residents without a channel are skipped; ``channels`` is
        the JSON list of kinds the fan-out was staged with."""
        return await self.db.fetch_all("preview_chunk_skips", {"channels": channels})

    async def staged_held(self, now: int) -> list[Row]:
        """(town, n): residents of the staged chunk whose first message waits for their quiet hours to end."""
        return await self.db.fetch_all("preview_chunk_held", {"now": now})

    async def write_chunk(self, params: Mapping[str, Any]) -> tuple[int, int]:
        """Insert one chunk's deliveries; (residents matched, residents with a chosen channel).

        Where the database writes inside ``WITH`` (PostgreSQL), ``fanout_insert_deliveries`` matches, chooses
        and inserts in one statement and returns the counts, with no staging table; SQLite stages the chunk
        first (``stage_chunk``) and inserts from the staging tables. Call inside a transaction.
        """
        if self.db.writes_in_with:
            row = await self.db.fetch_one("fanout_insert_deliveries", params)
            assert row is not None
            return int(row["matched"]), int(row["reached"])
        await self.stage_chunk(params)
        await self.db.execute("fanout_insert_deliveries", params)
        return await self.staged_counts()

    async def fan_out_chunk(
        self, notice_id: int, worker: str, after: int, upto: int, params: Mapping[str, Any]
    ) -> bool:
        """Create the deliveries of one chunk and move the notice's cursor, atomically.

        Returns False (and writes nothing) when the notice is no longer approved, or its lease or
        cursor moved on: a cancel or another process got there first.
        """
        async with self.db.transaction():
            held = await self.db.fetch_one(
                "hold_fanout",
                {"id": notice_id, "worker": worker, "after": after, "lease_until": params["lease_until"]},
            )
            if held is None:
                return False
            matched, reached = await self.write_chunk(params)
            await self.db.execute(
                "advance_fanout", {"id": notice_id, "upto": upto, "reached": reached, "skipped": matched - reached}
            )
            # in the transaction: the workers plan their claims again from the commit that shows them the rows
            await self.db.refresh_statistics("deliveries")
        return True

    async def finish_fanout(self, notice_id: int, worker: str) -> bool:
        async with self.db.transaction():
            row = await self.db.fetch_one("finish_fanout", {"id": notice_id, "worker": worker, "now_iso": now_iso()})
            if row is not None:
                moved: dict[str, object] = {"before": {"state": "approved"}, "after": {"state": "scheduled"}}
                await self.audit("engine", "notice.scheduled", "notice", notice_id, moved)
        return row is not None

    async def store_rendered(self, notice_id: int, contents: Mapping[str, Mapping[str, Any]]) -> None:
        rows = [{"notice_id": notice_id, "channel": k, "content": dumps(v)} for k, v in contents.items()]
        await self.db.execute_many("store_rendered_message", rows)

    async def rendered_messages(self, notice_id: int) -> dict[str, str]:
        rows = await self.db.fetch_all("rendered_messages", {"notice_id": notice_id})
        return {r["channel"]: r["content"] for r in rows}

    # queue

    async def claim_deliveries(self, alias: str, worker: str, now: float, lease: float, limit: int) -> list[Row]:
        """Lease up to ``limit`` due deliveries of one alias, most urgent first: to residents (``subscriber_id``)
        or, for an alias of kind bot or bulletin, to areas (``area_code``). Each row also carries its
        notice's state, channel_mode, channels and title as ``notice_<column>`` (see ``notices_of_claim``), and
        the resident's ``language`` (which rendering it gets). The notice's columns come from the claiming
        statement, or where it cannot read them cheaply (``Database.claim_reads_notices``) from one read of the
        batch's notices in the same transaction."""
        params = {
            "alias": alias,
            "worker": worker,
            "now": now,
            "now_iso": now_iso(),
            "lease_until": now + lease,
            "limit": limit,
        }
        if self.db.claim_reads_notices:
            return await self.db.fetch_all("claim_deliveries", params)
        async with self.db.transaction():
            rows = await self.db.fetch_all("claim_deliveries", params)
            if rows:
                notices = await self.notices_of_batch(row["notice_id"] for row in rows)
                for row in rows:
                    notice = notices[row["notice_id"]]
                    row["notice_state"] = notice["state"]
                    row["notice_channel_mode"] = notice["channel_mode"]
                    row["notice_channels"] = notice["channels"]
                    row["notice_title"] = notice["title"]
        return rows

    @staticmethod
    def notices_of_claim(rows: Iterable[Row]) -> dict[int, Row]:
        """The notices of claimed deliveries as ``notices_of_batch`` would read them, from the ``notice_*``
        columns ``claim_deliveries`` returns with each row (read in the claiming statement)."""
        notices: dict[int, Row] = {}
        for row in rows:
            notice_id = row["notice_id"]
            if notice_id not in notices:
                notices[notice_id] = {
                    "id": notice_id,
                    "state": row["notice_state"],
                    "channel_mode": row["notice_channel_mode"],
                    "channels": row["notice_channels"],
                    "title": row["notice_title"],
                }
        return notices

    async def notices_of_batch(self, notice_ids: Iterable[int]) -> dict[int, Row]:
        rows = await self.db.fetch_all("notices_of_batch", {"ids": dumps(sorted(set(notice_ids)))})
        return {int(r["id"]): r for r in rows}

    async def mark_notices_sending(self, notices: Mapping[int, Row]) -> None:
        """Move the notices of a batch (as ``notices_of_batch`` read them) from scheduled to sending.

        Those read as ``sending`` are left out: a notice never goes back to ``scheduled``, so the update
        could not change them (one statement less per batch while a notice is being sent).
        """
        ids = sorted(notice_id for notice_id, notice in notices.items() if notice["state"] != "sending")
        if not ids:
            return
        async with self.db.transaction():
            rows = await self.db.fetch_all("mark_notices_sending", {"ids": dumps(ids), "now_iso": now_iso()})
            for row in rows:
                moved: dict[str, object] = {"before": {"state": "scheduled"}, "after": {"state": "sending"}}
                await self.audit("engine", "notice.sending", "notice", row["id"], moved)

    async def record_sent(self, worker: str, sent: list[tuple[int, str, float | None, float | None]]) -> None:
        """(delivery id, provider message id, due_at, poll_until) for each sent message: due_at is a resident's
        confirm-by or an area's first print-job poll, poll_until an area's last poll (epochs, None: none)."""
        if sent:
            await self.db.execute("record_sent", {"sent": dumps(sent), "worker": worker, "now_iso": now_iso()})

    async def requeue_delivery(self, delivery_id: int, worker: str, due_at: float, alias: str, error: str) -> None:
        await self.db.execute(
            "requeue_delivery",
            {
                "id": delivery_id,
                "worker": worker,
                "due_at": due_at,
                "alias": alias,
                "error": error,
                "now_iso": now_iso(),
            },
        )

    async def return_unstarted(self, delivery_id: int, worker: str, reason: str) -> None:
        """Queue again, as it was and due at once, a claimed delivery its adapter never started."""
        await self.db.execute(
            "return_unstarted", {"id": delivery_id, "worker": worker, "error": reason, "now_iso": now_iso()}
        )

    async def close_delivery(
        self, delivery_id: int, *, state: str, from_state: str, error: str | None, worker: str | None
    ) -> bool:
        """Move a delivery to a final state (failed, skipped, fallback); False if it was not in from_state."""
        changed = await self.db.execute(
            "close_delivery",
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

    async def fallback_subject(self, notice_id: int, subscriber_id: int) -> Row | None:
        return await self.db.fetch_one("fallback_subject", {"notice_id": notice_id, "subscriber_id": subscriber_id})

    async def insert_delivery(self, row: Mapping[str, Any]) -> bool:
        return await self.db.execute("insert_delivery", {**row, "now_iso": now_iso()}) > 0

    # housekeeping

    async def take_back_leases(self, now: float, dead_before: float) -> int:
        """Put back in the queue the deliveries (resident and area) whose lease expired, and all those of
        workers whose last heartbeat is older than ``dead_before`` (their fan-outs too), then forget those
        workers; the number of deliveries put back."""
        taken = await self.db.execute("recover_leases", {"now": now, "now_iso": now_iso()})
        if await self.db.fetch_value("dead_worker", {"dead_before": dead_before}) is not None:
            taken += await self.release_workers(dead_before, None)
        return taken

    async def release_worker(self, worker: str) -> int:
        """A worker stopping cleanly: its leases back to the queue, its registration gone; how many deliveries."""
        return await self.release_workers(0.0, worker)

    async def release_workers(self, dead_before: float, worker: str | None) -> int:
        params = {"dead_before": dead_before, "worker": worker, "now_iso": now_iso()}
        async with self.db.transaction():
            released = await self.db.execute("release_worker_leases", params)
            await self.db.execute("release_worker_fanouts", params)
            await self.db.execute("forget_workers", params)
        return released

    # workers

    async def register_worker(self, worker: str, now: float, breakers: str | None = None) -> None:
        params = {"worker": worker, "now": now, "now_iso": now_iso(), "breakers": breakers}
        await self.db.execute("register_worker", params)

    async def beat_worker(self, worker: str, now: float, breakers: str | None = None) -> bool:
        """Record a heartbeat with the worker's circuit breakers (JSON, ``engine.heartbeat.breaker_states``);
        False when the worker is not registered (never, or forgotten as dead)."""
        return await self.db.execute("beat_worker", {"worker": worker, "now": now, "breakers": breakers}) > 0

    async def worker_breakers(self, alive_after: float) -> list[Row]:
        """(id, breakers JSON) of each worker that beat at ``alive_after`` or later and has failover aliases."""
        return await self.db.fetch_all("worker_breakers", {"alive_after": alive_after})

    async def registered_workers(self) -> list[str]:
        return [row["id"] for row in await self.db.fetch_all("registered_workers")]

    async def expire_notices(self, now: float) -> list[int]:
        """Expire unfinished notices past expires_at and skip their queued deliveries."""
        async with self.db.transaction():
            before = await self._active_states()
            rows = await self.db.fetch_all("expire_notices", {"now_iso": iso_at(now)})
            for row in rows:
                skipped = await self.skip_notice_deliveries(int(row["id"]), "expired")
                moved: dict[str, object] = {"before": {"state": before.get(row["id"])}, "after": {"state": "expired"}}
                await self.audit("engine", "notice.expired", "notice", row["id"], {**moved, "skipped": skipped})
        return [int(r["id"]) for r in rows]

    async def skip_notice_deliveries(self, notice_id: int, reason: str) -> int:
        """Skip the notice's queued deliveries, resident and area ones; how many."""
        params = {"notice_id": notice_id, "reason": reason, "now_iso": now_iso()}
        return await self.db.execute("skip_notice_deliveries", params)

    async def finish_notices(self) -> list[int]:
        """Mark done the notices with no delivery left queued or sending (none are, mostly: a read first)."""
        if await self.db.fetch_value("notice_to_finish") is None:
            return []
        async with self.db.transaction():
            before = await self._active_states()
            rows = await self.db.fetch_all("finish_notices", {"now_iso": now_iso()})
            for row in rows:
                moved: dict[str, object] = {"before": {"state": before.get(row["id"])}, "after": {"state": "done"}}
                await self.audit("engine", "notice.done", "notice", row["id"], moved)
        return [int(r["id"]) for r in rows]

    async def unconfirmed_deliveries(self, now: float, limit: int) -> list[Row]:
        return await self.db.fetch_all("unconfirmed_deliveries", {"now": now, "limit": limit})

    async def clear_confirm_deadline(self, delivery_id: int) -> None:
        await self.db.execute("clear_confirm_deadline", {"id": delivery_id})

    async def cancel_notice_row(self, notice_id: int, actor: str) -> int | None:
        """Cancel a notice not yet finished and skip its queued deliveries; None if it was not cancellable."""
        async with self.db.transaction():
            before = await self.db.fetch_value("notice_state", {"id": notice_id})
            row = await self.db.fetch_one("cancel_notice", {"id": notice_id, "now_iso": now_iso()})
            if row is None:
                return None
            skipped = await self.skip_notice_deliveries(notice_id, "cancelled")
            detail: dict[str, object] = {
                "skipped": skipped,
                "before": {"state": before},
                "after": {"state": "cancelled"},
            }
            await self.audit(actor, "notice.cancelled", "notice", notice_id, detail)
        return skipped

    async def _active_states(self) -> dict[int, str]:
        return {int(r["id"]): str(r["state"]) for r in await self.db.fetch_all("active_notice_states")}

    async def next_send_at(self, now: float) -> str | None:
        value = await self.db.fetch_value("next_send_at", {"now_iso": iso_at(now)})
        return None if value is None else str(value)

    # receipts

    async def lock_message_ids(self, message_ids: Iterable[tuple[str, str]]) -> None:
        """Hold these (alias, provider message id) until the transaction ends: call first in a transaction that
        looks a receipt's delivery up, or records sends and looks their early receipts up, so that a receipt and
        the record of its send run one after the other and either the receipt finds the send recorded or the
        record finds the receipt kept (advisory locks on PostgreSQL; SQLite has one writer at a time, so nothing is
        sent to it: a round trip for every receipt and batch)."""
        if not self.db.writers_side_by_side:
            return
        pairs = sorted(set(message_ids))
        if pairs:
            await self.db.execute("lock_message_ids", {"ids": dumps(pairs)})

    async def find_delivery_by_provider_id(self, alias: str, provider_message_id: str) -> Row | None:
        return await self.db.fetch_one(
            "find_delivery_by_provider_id", {"alias": alias, "provider_message_id": provider_message_id}
        )

    async def insert_receipt(
        self,
        delivery_id: int | None,
        alias: str,
        provider_message_id: str,
        status: str,
        detail: str | None,
        *,
        received_at: float,
    ) -> None:
        """Keep one receipt, stamped ``received_at`` (epoch seconds, on the caller's clock: the engine's, whose
        housekeeping purges the unmatched ones against that clock)."""
        await self.db.execute(
            "insert_receipt",
            {
                "delivery_id": delivery_id,
                "alias": alias,
                "provider_message_id": provider_message_id,
                "status": status,
                "detail": detail,
                "now_iso": iso_at(received_at),
            },
        )

    async def early_receipts(self, delivery_ids: list[int], members: Sequence[str] = ()) -> list[Row]:
        """Receipts stored before these deliveries' sends were recorded, matched by message id, kept under the
        delivery's alias or one of ``members`` (the aliases a failover alias sends through)."""
        rows = await self.db.fetch_all("early_receipts_for_deliveries", {"ids": dumps(delivery_ids)})
        if members:
            more = await self.db.fetch_all(
                "early_receipts_of_members", {"ids": dumps(delivery_ids), "members": dumps(list(members))}
            )
            rows = sorted([*rows, *more], key=lambda row: row["receipt_id"])
        return rows

    async def receipted_message_ids(self, aliases: Sequence[str], provider_message_ids: list[str]) -> set[str]:
        """Those of these message ids that a receipt kept under one of ``aliases`` before its send was recorded
        carries."""
        found: set[str] = set()
        ids = dumps(provider_message_ids)
        for alias in aliases if provider_message_ids else ():
            rows = await self.db.fetch_all("receipted_message_ids", {"alias": alias, "ids": ids})
            found.update(row["provider_message_id"] for row in rows)
        return found

    async def purge_early_receipts(self, before: float) -> int:
        """Delete the receipts kept unmatched (no send recorded for them) that arrived before ``before``; how many."""
        return await self.db.execute("purge_early_receipts", {"before_iso": iso_at(before)})

    async def attach_receipt(self, receipt_id: int, delivery_id: int) -> None:
        await self.db.execute("attach_receipt", {"id": receipt_id, "delivery_id": delivery_id})

    async def mark_delivered(self, delivery_id: int) -> bool:
        return await self.db.execute("mark_delivered", {"id": delivery_id, "now_iso": now_iso()}) > 0

    # scheduling

    async def insert_recurring_notice(
        self, department: str, cron: str, notice: Mapping[str, Any], actor: str, required: int
    ) -> int:
        row = await self.db.fetch_one(
            "insert_recurring_notice",
            {
                "department": department,
                "cron": cron,
                "notice": dumps(notice),
                "created_by": actor,
                "now_iso": now_iso(),
                "required": required,
            },
        )
        assert row is not None
        return int(row["id"])

    async def active_recurring_notices(self) -> list[Row]:
        return await self.db.fetch_all("active_recurring_notices")

    async def claim_job_run(self, job_key: str, worker: str) -> bool:
        """True for exactly one caller per key, however many schedulers race for it."""
        row = await self.db.fetch_one("claim_job_run", {"job_key": job_key, "worker": worker, "now_iso": now_iso()})
        return row is not None

    if TYPE_CHECKING:  # provided by CatalogRepository in the composed Store

        async def audit(
            self, actor: str, action: str, object_type: str, object_id: object, detail: dict[str, object] | None = None
        ) -> None: ...
