"""Recurring notices under the approval rules: a series' approvals per revision, its revisions, and the
approval each notice it issues records (migration 022; the rules are in ``notifier.approval``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifier.domain.errors import Conflict, Forbidden, NotFound
from notifier.domain.models import ApiKeyInfo
from notifier.store.audit import AuditRepository
from notifier.store.common import dumps, now_iso
from notifier.store.database import Database, Row


def series_author(row: Row) -> str:
    """Who wrote the series' current revision: its reviser, else its creator."""
    return str(row["revised_by"] or row["created_by"])


class RecurringRepository(AuditRepository):
    db: Database

    async def get_recurring_notice(self, recurring_id: int) -> Row:
        row = await self.db.fetch_one("get_recurring_notice", {"id": recurring_id})
        if row is None:
            raise NotFound(f"no recurring notice {recurring_id}")
        return row

    async def recurring_approvals(self, recurring_id: int, revision: int) -> list[Row]:
        return await self.db.fetch_all("recurring_approvals", {"recurring_id": recurring_id, "revision": revision})

    async def approve_recurring_notice(
        self, recurring_id: int, *, decider: ApiKeyInfo, actor: str, comment: str | None
    ) -> Row:
        """One approval of the series' current revision by a distinct approver (never its author); the series
        is approved, and fires, once ``approvals_required`` of them have approved it."""
        async with self.db.transaction():
            row = await self.get_recurring_notice(recurring_id)
            if not row["active"]:
                raise Conflict(f"recurring notice {recurring_id} is stopped")
            if row["approved_at"] is not None:
                raise Conflict(f"recurring notice {recurring_id} is already approved at revision {row['revision']}")
            if series_author(row) == actor:
                raise Forbidden("a recurring notice must be approved by someone other than who wrote it")
            revision = int(row["revision"])
            approvers = {r["actor"] for r in await self.recurring_approvals(recurring_id, revision)}
            if actor in approvers:
                raise Conflict(f"recurring notice {recurring_id} is already approved by {actor}")
            now = now_iso()
            params = {"recurring_id": recurring_id, "revision": revision, "actor": actor, "key_id": decider.id}
            params.update(role=decider.role.value, department=decider.department, comment=comment, now=now)
            await self.db.execute("insert_recurring_approval", params)
            count, needed = len(approvers) + 1, int(row["approvals_required"])
            complete = count >= needed
            if complete:
                await self.db.execute(
                    "complete_recurring_approval", {"id": recurring_id, "revision": revision, "now": now}
                )
            detail: dict[str, Any] = {"revision": revision, "comment": comment, "approvals": count}
            detail.update(approvals_required=needed)
            if complete:
                detail.update(before={"approved": False}, after={"approved": True})
            action = "recurring.approved" if complete else "recurring.approval"
            await self.audit(actor, action, "recurring_notice", recurring_id, detail)
        return await self.get_recurring_notice(recurring_id)

    async def revise_recurring_notice(
        self, recurring_id: int, *, notice: Mapping[str, Any], cron: str, required: int, actor: str
    ) -> Row:
        """A new revision (notice and cron): its approvals start again from none, and it fires no slot until
        approved."""
        async with self.db.transaction():
            before = await self.get_recurring_notice(recurring_id)
            params = {"id": recurring_id, "notice": dumps(notice), "cron": cron, "required": required}
            if await self.db.fetch_one("revise_recurring_notice", {**params, "actor": actor, "now": now_iso()}) is None:
                raise Conflict(f"recurring notice {recurring_id} is stopped")
            detail = {
                "before": {
                    "revision": before["revision"],
                    "cron": before["cron"],
                    "approved": bool(before["approved_at"]),
                },
                "after": {"revision": before["revision"] + 1, "cron": cron, "approved": False},
                "approvals_required": required,
            }
            await self.audit(actor, "recurring.revised", "recurring_notice", recurring_id, detail)
        return await self.get_recurring_notice(recurring_id)

    async def record_series_approval(self, notice_id: int, series: Row, approvals: list[Row]) -> None:
        """The approval a notice issued by a series carries: one decision per approver of the series' revision
        (with their comment and time), and its approval complete as of now (its release)."""
        for approval in approvals:
            comment = f"series {series['id']} revision {series['revision']}" + (
                f": {approval['comment']}" if approval["comment"] else ""
            )
            params = {"notice_id": notice_id, "decision": "approved", "actor": approval["actor"]}
            params.update(role=approval["role"], department=approval["department"], comment=comment)
            await self.db.execute(
                "insert_notice_decision_full", {**params, "now": approval["decided_at"], "after_the_fact": 0}
            )
        last = approvals[-1]["key_id"] if approvals else None
        params = {"id": notice_id, "approved_by": last, "required": series["approvals_required"], "reason": None}
        await self.db.execute("complete_approval", {**params, "now": now_iso()})
