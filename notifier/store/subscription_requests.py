"""Residents' requests (subscribe, open /me): codes sent by SMS or links by e-mail, waiting to come back.

Query-shaped, no policy: ``notifier.residents.flow`` decides the limits and the expiry, passes ``now``
(epoch seconds) and the code's hash; this module only moves rows of ``subscription_requests``
(``sql/sqlite_004_subscription_requests.sql``, rebuilt by ``sqlite_014_resident_messages.sql``). The rows
double as the rate-limit counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notifier.store.common import dumps
from notifier.store.database import Database, Row

DAY = 86400.0


def like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\' (an address may hold ``%`` or ``_``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class RequestCounts:
    """Codes sent lately: to one address in the last minute and day, from one client address in the last hour."""

    phone_minute: int
    phone_day: int
    ip_hour: int


@dataclass(frozen=True)
class NewRequest:
    address: str  # E.164 phone, or lower-case e-mail address
    name: str
    area_code: str | None
    topics: Sequence[str]
    client_ip: str
    code_hash: str
    max_attempts: int
    expires_at: float
    purpose: str = "subscribe"  # or "me"
    channel: str = "sms"  # or "email"
    subscriber_id: int | None = None  # for "me": the resident the address belongs to


class SubscriptionRequestRepository:
    db: Database

    async def village_names(self, code: str) -> Row | None:
        """(code, village, town, county) of a village; None for an unknown code or one that is no village."""
        return await self.db.fetch_one("web_village", {"code": code})

    async def town_names(self, code: str) -> Row | None:
        """(code, town, county, villages as JSON [{code, name}]) of a town; None for anything else."""
        return await self.db.fetch_one("web_town", {"code": code})

    async def find_subscriber_by_email(self, email: str) -> int | None:
        value = await self.db.fetch_value("find_subscriber_by_email", {"email": email.lower()})
        return None if value is None else int(value)

    async def topic_names(self) -> list[Row]:
        """(code, name) of every topic, in the order they were created."""
        return await self.db.fetch_all("web_topics")

    async def lock_code_requests(self, address: str, client_ip: str) -> None:
        """Hold the limits of this address and this client address until the transaction ends: call first in the
        transaction that counts the requests and adds one, so that requests at once are counted one after the
        other (advisory locks on PostgreSQL; SQLite has one writer at a time, so nothing is sent to it)."""
        if self.db.writers_side_by_side:
            await self.db.execute("lock_code_requests", {"address": f"to {address}", "client_ip": f"from {client_ip}"})

    async def count_subscription_requests(self, mailbox: str, client_ip: str, now: float) -> RequestCounts:
        """Requests to ``mailbox`` (a phone number, or an e-mail address without ``+tag``: ``flow.mailbox_of``) and
        to its ``+tag`` variants in the last minute and day, and from ``client_ip`` in the last hour."""
        local, at, domain = mailbox.partition("@")
        row = await self.db.fetch_one(
            "count_subscription_requests",
            {
                "address": mailbox,
                "variants": f"{like_escaped(local)}+%@{like_escaped(domain)}" if at else None,
                "client_ip": client_ip,
                "minute_ago": now - 60,
                "hour_ago": now - 3600,
                "day_ago": now - DAY,
            },
        )
        assert row is not None
        return RequestCounts(int(row["phone_minute"]), int(row["phone_day"]), int(row["ip_hour"]))

    async def insert_subscription_request(self, request: NewRequest, now: float) -> int:
        """Store a request (the caller holds the transaction in which it checked the limits); return its id."""
        row = await self.db.fetch_one(
            "insert_subscription_request",
            {
                "purpose": request.purpose,
                "channel": request.channel,
                "address": request.address,
                "subscriber_id": request.subscriber_id,
                "name": request.name,
                "area_code": request.area_code,
                "topics": dumps(list(request.topics)),
                "client_ip": request.client_ip,
                "code_hash": request.code_hash,
                "max_attempts": request.max_attempts,
                "now": now,
                "expires_at": request.expires_at,
            },
        )
        assert row is not None
        return int(row["id"])

    async def get_subscription_request(self, request_id: int) -> Row | None:
        return await self.db.fetch_one("get_subscription_request", {"id": request_id})

    async def mark_subscription_request_unsent(self, request_id: int) -> None:
        """The code never left: the request can no longer be confirmed (it still counts for the limits)."""
        await self.db.execute("mark_subscription_request_unsent", {"id": request_id})

    async def count_subscription_attempt(self, request_id: int, now: float) -> int | None:
        """Count a wrong code; the attempts left, or None when the request could not be confirmed anyway."""
        row = await self.db.fetch_one("count_subscription_attempt", {"id": request_id, "now": now})
        return None if row is None else max(0, int(row["max_attempts"]) - int(row["attempts"]))

    async def confirm_subscription_request(self, request_id: int, now: float) -> bool:
        """Claim a live request for confirmation; False when it was confirmed, spent or expired meanwhile."""
        return await self.db.execute("confirm_subscription_request", {"id": request_id, "now": now}) > 0

    async def set_subscription_request_subscriber(self, request_id: int, subscriber_id: int) -> None:
        await self.db.execute("set_subscription_request_subscriber", {"id": request_id, "subscriber_id": subscriber_id})

    async def purge_subscription_requests(self, now: float) -> int:
        """Delete requests, and the messages that carried their codes, older than the longest limit window (a
        day); they hold personal data."""
        purged = await self.db.execute("purge_direct_messages", {"before": now - DAY})
        return purged + await self.db.execute("purge_subscription_requests", {"before": now - DAY})
