"""Delivery receipts: a provider's later word on a message, matched by its message id.

``status`` is normalised by the receiving hook: ``delivered`` confirms a sent message; ``failed``
is a permanent failure reported after acceptance and hands the resident to the next channel like
a ``Failed`` result. Other statuses are stored with the delivery and change nothing. Repeated
receipts are logged and ignored.

A receipt can overtake the send it reports on: a fast SMSC acknowledges before the worker has
written the provider's answer. A receipt whose message id matches no delivery is therefore kept
(with no delivery attached) and applied by ``apply_early_receipts`` when the send is recorded; one
that never finds its delivery stays in the table for the record and changes nothing. On a fast gateway
this is most receipts, so it is logged at DEBUG only. The receipt's transaction and the record of the
send both lock the message id first (``Store.lock_message_ids``), so the later of the two sees what the
earlier committed: the receipt finds its send recorded, or the record finds the receipt kept.
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
    # one write transaction holding the message id, which the worker's record of the send holds too: the
    # look-up and the keeping of an early receipt cannot interleave with that record, so an early receipt is
    # either seen by it or sees the delivery (on PostgreSQL, where transactions run side by side, each look-up
    # would otherwise see only what the other had committed before it)
    async with store.db.transaction():
        await store.lock_message_ids([(alias, provider_message_id)])
        delivery = await store.find_delivery_by_provider_id(alias, provider_message_id)
        if delivery is None:
            # the normal case on a fast gateway: its receipt overtakes the worker's record of the send
            log.debug("receipt for message %s on %s kept until its send is recorded", provider_message_id, alias)
            await store.insert_receipt(None, alias, provider_message_id, status, detail)
            return ReceiptOutcome.UNKNOWN
        return await _apply(store, delivery, alias, provider_message_id, status, detail, context)


async def apply_early_receipts(store: Store, delivery_ids: list[int], context: EngineContext | None) -> int:
    """Apply the receipts that arrived before these deliveries' sends were recorded; how many."""
    early = await store.early_receipts(delivery_ids) if delivery_ids else []
    for receipt in early:
        await store.attach_receipt(receipt["receipt_id"], receipt["delivery_id"])
        delivery = await store.find_delivery_by_provider_id(receipt["alias"], receipt["provider_message_id"])
        if delivery is not None:
            await _apply_state(store, delivery, receipt["status"], receipt["detail"], context)
    return len(early)


async def _apply(
    store: Store,
    delivery: Row,
    alias: str,
    provider_message_id: str,
    status: str,
    detail: str | None,
    context: EngineContext | None,
) -> ReceiptOutcome:
    if delivery["state"] in ("delivered", "failed") and status in ("delivered", "failed"):
        log.info("duplicate receipt for delivery %s ignored", delivery["id"])
        return ReceiptOutcome.DUPLICATE
    async with store.db.transaction():
        await store.insert_receipt(delivery["id"], alias, provider_message_id, status, detail)
        if await _apply_state(store, delivery, status, detail, context):
            return ReceiptOutcome.APPLIED
    return ReceiptOutcome.STORED


async def _apply_state(
    store: Store, delivery: Row, status: str, detail: str | None, context: EngineContext | None
) -> bool:
    if status == "delivered":
        return await store.mark_delivered(delivery["id"])
    if status == "failed" and delivery["state"] == "sent":
        await _fail_after_acceptance(store, delivery, detail, context)
        return True
    return False


async def _fail_after_acceptance(
    store: Store, delivery: Row, detail: str | None, context: EngineContext | None
) -> None:
    reason = f"provider reported failure: {detail}" if detail else "provider reported failure"
    if context is None:
        await store.close_delivery(delivery["id"], state="failed", from_state="sent", error=reason, worker=None)
        return
    notices = await store.notices_of_batch([delivery["notice_id"]])
    await give_up(context, delivery, notices[delivery["notice_id"]], reason, context.clock(), from_state="sent")
