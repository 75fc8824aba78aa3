"""Residents' feedback items: stored, listed per department, assigned, answered, closed, counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifier.domain.errors import Conflict, NotFound
from notifier.domain.feedback import FeedbackItem
from notifier.store.audit import AuditRepository
from notifier.store.common import decode_cursor, iso, now_iso, page
from notifier.store.database import Database, Row


@dataclass(frozen=True)
class NewFeedback:
    channel: str  # sms, wechat, form
    text: str
    category: str = "opinion"
    notice_id: int | None = None
    department: str | None = None
    subscriber_id: int | None = None
    alias: str | None = None
    contact: str | None = None
    contact_name: str | None = None
    source_hash: str | None = None


def erased_text(days: int) -> str:
    return f"erased after {days} days"


def feedback_item(row: Row, now: datetime) -> FeedbackItem:
    due = datetime.fromisoformat(row["due_at"])
    fields = {k: v for k, v in row.items() if k != "source_hash"}
    if row["erased_at"] is not None:
        fields["text"] = erased_text(int(row["erased_after_days"]))
    return FeedbackItem(**fields, overdue=row["state"] == "open" and due < now)


class FeedbackRepository(AuditRepository):
    db: Database

    async def add_feedback(self, item: NewFeedback, *, received: datetime, due: datetime, actor: str) -> int:
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "insert_feedback",
                {
                    "notice_id": item.notice_id, "department": item.department, "subscriber_id": item.subscriber_id,
                    "channel": item.channel, "alias": item.alias, "contact": item.contact,
                    "contact_name": item.contact_name, "category": item.category, "text": item.text,
                    "source_hash": item.source_hash, "received_at": iso(received), "due_at": iso(due),
                },
            )
            assert row is not None
            feedback_id = int(row["id"])
            await self.audit(actor, "feedback.received", "feedback", feedback_id,
                             {"notice": item.notice_id, "department": item.department, "channel": item.channel,
                              "category": item.category})
        return feedback_id

    async def get_feedback(self, feedback_id: int) -> FeedbackItem:
        row = await self.db.fetch_one("get_feedback", {"id": feedback_id})
        if row is None:
            raise NotFound(f"no feedback {feedback_id}")
        return feedback_item(row, datetime.now(UTC))

    async def list_feedback(
        self, *, department: str | None, unlinked: bool, notice_id: int | None, state: str | None,
        overdue: bool | None, cursor: str | None, limit: int,
    ) -> tuple[list[FeedbackItem], str | None]:
        now = datetime.now(UTC)
        rows = await self.db.fetch_all(
            "list_feedback",
            {"after": decode_cursor(cursor) or 0, "department": department, "unlinked": unlinked,
             "notice_id": notice_id, "state": state, "overdue": None if overdue is None else int(overdue),
             "now_iso": iso(now), "limit": limit + 1},
        )
        items, next_cursor = page(rows, limit)
        return [feedback_item(row, now) for row in items], next_cursor

    async def lock_feedback_source(self, source_hash: str) -> None:
        """Hold the count of this source's forms until the transaction ends: call first in the transaction that
        counts them and takes one, so that forms at once are counted one after the other (an advisory lock on
        PostgreSQL; SQLite has one writer at a time, so nothing is sent to it)."""
        if self.db.writers_side_by_side:
            await self.db.execute("lock_feedback_source", {"source_hash": source_hash})

    async def recent_feedback_from(self, source_hash: str, since: datetime) -> int:
        return int(await self.db.fetch_value("recent_feedback_from_source",
                                             {"source_hash": source_hash, "since": iso(since)}) or 0)

    async def assign_feedback(self, feedback_id: int, assigned_to: str, actor: str) -> None:
        async with self.db.transaction():
            if await self.db.fetch_one("assign_feedback", {"id": feedback_id, "assigned_to": assigned_to}) is None:
                raise Conflict(f"feedback {feedback_id} is closed")
            await self.audit(actor, "feedback.assigned", "feedback", feedback_id, {"assigned_to": assigned_to})

    async def answer_feedback(self, feedback_id: int, answer: str, reply_notice: int | None, actor: str) -> None:
        """Record the answer (inside the caller's transaction, with the reply notice when one carries it)."""
        async with self.db.transaction():
            changed = await self.db.fetch_one(
                "answer_feedback",
                {"id": feedback_id, "answer": answer, "answered_by": actor, "reply_notice": reply_notice,
                 "now_iso": now_iso()},
            )
            if changed is None:
                raise Conflict(f"feedback {feedback_id} is closed")
            await self.audit(actor, "feedback.answered", "feedback", feedback_id, {"reply_notice": reply_notice})

    async def close_feedback(self, feedback_id: int, outcome: str, actor: str) -> None:
        async with self.db.transaction():
            changed = await self.db.fetch_one(
                "close_feedback", {"id": feedback_id, "outcome": outcome, "closed_by": actor, "now_iso": now_iso()}
            )
            if changed is None:
                raise Conflict(f"feedback {feedback_id} is already closed")
            await self.audit(actor, "feedback.closed", "feedback", feedback_id, {})

    async def erase_expired_feedback(self, now: datetime, keep_days: int, limit: int = 500) -> list[Row]:
        """Erase the personal fields of items closed (never closed: received) more than ``keep_days`` before
        ``now``, at most ``limit``; one audit entry ``feedback.erase`` per item. Then the answers of erased items
        that reply notices carried, once those notices are finished: their body and renderings (audit
        ``notice.erase``). The items erased (id, department)."""
        async with self.db.transaction():
            rows = await self.db.fetch_all(
                "erase_expired_feedback",
                {"cutoff_iso": iso(now - timedelta(days=keep_days)), "now_iso": iso(now), "keep_days": keep_days,
                 "limit": limit},
            )
            for row in rows:
                await self.audit("engine", "feedback.erase", "feedback", row["id"],
                                 {"department": row["department"], "keep_days": keep_days})
            replies = await self.db.fetch_all("erase_reply_notices", {"now_iso": iso(now)})
            if replies:
                await self.db.execute("erase_reply_renderings")
            for reply in replies:
                await self.audit("engine", "notice.erase", "notice", reply["id"],
                                 {"answers_feedback": reply["answers_feedback"], "erased": ["body", "renderings"]})
        return rows

    async def feedback_report_rows(self, start: datetime, end: datetime, department: str | None) -> list[Row]:
        return await self.db.fetch_all(
            "feedback_report", {"from_iso": iso(start), "to_iso": iso(end), "department": department}
        )

    async def latest_notice_for(self, subscriber_id: int, channel: str) -> Row | None:
        return await self.db.fetch_one("latest_notice_for_subscriber",
                                       {"subscriber_id": subscriber_id, "channel": channel})

    async def find_subscriber_by_openid(self, openid: str) -> int | None:
        value = await self.db.fetch_value("find_subscriber_by_openid", {"openid": openid})
        return None if value is None else int(value)
