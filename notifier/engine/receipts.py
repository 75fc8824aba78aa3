"""Delivery receipts: a provider's later word on a message, matched by its message id.

``status`` is normalised by the receiving hook: ``delivered`` confirms a sent message; ``failed``
is a permanent failure reported after acceptance and hands the resident to the next channel like
a ``Failed`` result. Other statuses are stored with the delivery and change nothing. Unknown ids
and repeated receipts are logged and ignored.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from notifier.engine.context import EngineContext
from notifier.engine.outcomes import give_up
from notifier.store import Store
from notifier.store.database import Row

log = logging.getLogger(__name__)


class ReceiptOutcome(StrEnum):
    APPLIED = "applied"  # the delivery changed state
    STORED = "stored"  # kept for the record, no state change
    DUPLICATE = "duplicate"  # already applied; ignored
    UNKNOWN = "unknown"  # no delivery with this alias and message id; ignored


async def record_receipt(
    store: Store,
    alias: str,
    provider_message_id: str,
    status: str,
    detail: str | None = None,
    *,
    context: EngineContext | None = None,
) -> ReceiptOutcome:
    """Apply one receipt. Pass the running engine's ``context`` so a failure can fall back."""
    delivery = await store.find_delivery_by_provider_id(alias, provider_message_id)
    if delivery is None:
        log.warning("receipt for unknown message %s on %s ignored", provider_message_id, alias)
        return ReceiptOutcome.UNKNOWN
    if delivery["state"] in ("delivered", "failed") and status in ("delivered", "failed"):
        log.info("duplicate receipt for delivery %s ignored", delivery["id"])
        return ReceiptOutcome.DUPLICATE
    async with store.db.transaction():
        await store.insert_receipt(delivery["id"], alias, provider_message_id, status, detail)
        if status == "delivered" and await store.mark_delivered(delivery["id"]):
            return ReceiptOutcome.APPLIED
        if status == "failed" and delivery["state"] == "sent":
            await _fail_after_acceptance(store, delivery, detail, context)
            return ReceiptOutcome.APPLIED
    return ReceiptOutcome.STORED


async def _fail_after_acceptance(
    store: Store, delivery: Row, detail: str | None, context: EngineContext | None
) -> None:
    reason = f"provider reported failure: {detail}" if detail else "provider reported failure"
    if context is None:
        await store.close_delivery(delivery["id"], state="failed", from_state="sent", error=reason, worker=None)
        return
    notices = await store.notices_of_batch([delivery["notice_id"]])
    await give_up(context, delivery, notices[delivery["notice_id"]], reason, context.clock(), from_state="sent")
