"""Confirmations of notices, their reminders and the follow-up list, as the engine and the API see them."""

from __future__ import annotations

from typing import Any

from notifier.domain.models import PersonalDataScope
from notifier.store.common import now_iso
from notifier.store.database import Database, Row
from notifier.store.subscribers import scope_params


class ConfirmationRepository:
    db: Database

    async def awaiting_confirmation_by_sms(self, subscriber_id: int) -> Row | None:
        """The SMS delivery of the latest notice asking this resident to confirm that they have not confirmed."""
        return await self.db.fetch_one("awaiting_confirmation_by_sms", {"subscriber_id": subscriber_id})

    async def delivery_for_confirmation(self, delivery_id: int) -> Row | None:
        """A delivery with its notice's confirmation and state, and the resident's confirmed delivery if any."""
        return await self.db.fetch_one("delivery_for_confirmation", {"id": delivery_id})

    async def confirm_delivery(self, delivery_id: int) -> bool:
        """Move a sent, delivered or handed-over delivery to confirmed; False when it is in no such state."""
        return await self.db.execute("confirm_delivery", {"id": delivery_id, "now_iso": now_iso()}) > 0

    async def notices_to_remind(self, since_iso: str) -> list[Row]:
        return await self.db.fetch_all("notices_to_remind", {"since": since_iso})

    async def reminder_candidates(self, notice_id: int, cutoff_iso: str, limit: int) -> list[Row]:
        return await self.db.fetch_all(
            "reminder_candidates", {"notice_id": notice_id, "cutoff": cutoff_iso, "limit": limit}
        )

    async def record_reminder(self, notice_id: int, subscriber_id: int, channel: str | None) -> None:
        await self.db.execute(
            "insert_confirmation_reminder",
            {"notice_id": notice_id, "subscriber_id": subscriber_id, "channel": channel, "now_iso": now_iso()},
        )

    async def latest_sent_delivery(self, notice_id: int, subscriber_id: int) -> Row | None:
        return await self.db.fetch_one(
            "latest_sent_delivery", {"notice_id": notice_id, "subscriber_id": subscriber_id}
        )

    async def resend_delivery(self, delivery_id: int, alias: str, address: str, due_at: float) -> bool:
        """Queue a sent or delivered message again (the same rendered content); False when it is in no such state."""
        params = {"id": delivery_id, "alias": alias, "address": address, "due_at": due_at, "now_iso": now_iso()}
        return await self.db.execute("resend_delivery", params) > 0

    async def follow_up_rows(
        self, notice_id: int, area: str | None, after: int, limit: int, scope: PersonalDataScope | None
    ) -> list[Row]:
        """Residents of the notice with no confirmed delivery, of those ``scope`` reads (everyone with None): a
        county-wide notice reaches residents its department may not read (personal data: callers audit)."""
        params = {"notice_id": notice_id, "area": area, "after": after, "limit": limit, **scope_params(scope)}
        return await self.db.fetch_all("follow_up_list", params)

    async def confirmation_counts(self, notice_id: int) -> dict[str, Any]:
        row = await self.db.fetch_one("confirmation_counts", {"notice_id": notice_id})
        return dict(row or {})
