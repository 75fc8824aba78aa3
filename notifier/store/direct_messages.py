"""Transactional messages to one address (codes, links): queued by the resident pages, sent by the engine.

Query-shaped, no policy: ``notifier.engine.direct`` claims, sends and records them;
``notifier.residents.flow`` queues them. Times are epoch seconds (``sql/sqlite_014_resident_messages.sql``).
"""

from __future__ import annotations

from dataclasses import dataclass

from notifier.store.database import Database, Row


@dataclass(frozen=True)
class DirectMessage:
    purpose: str  # subscribe-code, subscribe-link, me-code, me-link
    channel: str  # channel kind
    alias: str  # the first alias of the kind
    address: str
    text: str
    deadline: float  # epoch seconds: after it the message is useless
    request_id: int | None = None
    subject: str | None = None
    html: str | None = None


class DirectMessageRepository:
    db: Database

    async def queue_direct_message(self, message: DirectMessage, now: float) -> int:
        row = await self.db.fetch_one(
            "insert_direct_message",
            {
                "purpose": message.purpose,
                "request_id": message.request_id,
                "channel": message.channel,
                "alias": message.alias,
                "address": message.address,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "now": now,
                "deadline": message.deadline,
            },
        )
        assert row is not None
        return int(row["id"])

    async def claim_direct_messages(self, alias: str, worker: str, now: float, lease: float, limit: int) -> list[Row]:
        params = {"alias": alias, "worker": worker, "now": now, "lease_until": now + lease, "limit": limit}
        return await self.db.fetch_all("claim_direct_messages", params)

    async def direct_message_sent(self, message_id: int, worker: str, provider_message_id: str, now: float) -> None:
        await self.db.execute(
            "direct_message_sent",
            {"id": message_id, "worker": worker, "provider_message_id": provider_message_id, "now": now},
        )

    async def requeue_direct_message(self, message_id: int, worker: str, alias: str, due_at: float, error: str) -> None:
        params = {"id": message_id, "worker": worker, "alias": alias, "due_at": due_at, "error": error}
        await self.db.execute("requeue_direct_message", params)

    async def direct_message_failed(self, message_id: int, worker: str, error: str) -> None:
        await self.db.execute("direct_message_failed", {"id": message_id, "worker": worker, "error": error})

    async def get_direct_message(self, message_id: int) -> Row | None:
        return await self.db.fetch_one("get_direct_message", {"id": message_id})

    async def direct_messages_of_request(self, request_id: int) -> list[Row]:
        return await self.db.fetch_all("direct_messages_of_request", {"request_id": request_id})
