"""Delivery receipts: a provider's later word on a message, matched by its message id.

``status`` is normalised by the receiving hook: ``delivered`` confirms a sent message; ``failed``
is a permanent failure reported after acceptance and hands the resident to the next channel like
a ``Failed`` result. Other statuses are stored with the delivery and change nothing. Repeated
receipts are logged and ignored, and so is a receipt whose message id is none (empty or ``"None"``, what older
versions recorded for a send answered without an id: it cannot say which of those sends it speaks for).

A receipt can overtake the send it reports on: a fast SMSC acknowledges before the worker has
written the provider's answer. A receipt whose message id matches no delivery is therefore kept
(with no delivery attached) and applied by ``apply_early_receipts`` when the send is recorded; one
that never finds its delivery changes nothing and is deleted by housekeeping past its retention
(``housekeeping.early_receipts_kept``). On a fast gateway this is most receipts, so it is logged at DEBUG only.
A receipt is stamped on the engine's clock (``context.clock``), the clock housekeeping purges against; on the
wall clock only where no context is given. The receipt's transaction and the record of the
send both lock the message id first (``Store.lock_message_ids``), so the later of the two sees what the
earlier committed: the receipt finds its send recorded, or the record finds the receipt kept.

A receipt comes in on the alias of the gateway that sent the message; a delivery sent through a failover alias
carries the failover's alias. So a receipt is looked for under its own alias and under each failover alias
sending through it (``owners``), in one transaction, and kept once, under its own alias, when none has it yet;
the record of a send through a failover alias takes the receipts kept under its members too
(``apply_early_receipts``' ``members``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from enum import StrEnum

from channels.base import message_id_of
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
    NO_ID = "no-id"  # the message id is none ("", "None": ``channels.base.message_id_of``); ignored, not kept


async def record_receipt(
    store: Store,
    alias: str,
    provider_message_id: str,
    status: str,
    detail: str | None = None,
    *,
    context: EngineContext | None = None,
    owners: Sequence[str] = (),
) -> ReceiptOutcome:
    """Apply one receipt that came in on ``alias``, to a delivery of ``alias`` or of one of the failover aliases
    sending through it (``owners``, ``Settings.failover_owners``). Pass the running engine's ``context`` so a
    failure can fall back and the receipt is stamped on the engine's clock."""
    # one write transaction holding the message id under every alias it may be recorded under, which the
    # worker's record of the send holds too: the look-up and the keeping of an early receipt cannot interleave
    # with that record, so an early receipt is either seen by it or sees the delivery (on PostgreSQL, where
    # transactions run side by side, each look-up would otherwise see only what the other had committed before it)
    message_id = message_id_of(provider_message_id)  # as the engine records a send's (``with_message_ids``)
    if message_id is None:
        # older versions recorded a success answered without an id under "None" or "": such an id names no
        # message, and a receipt carrying it would confirm (or fail) whichever of those sends it found first
        log.warning("receipt on %s without a usable message id ignored", alias)
        return ReceiptOutcome.NO_ID
    provider_message_id = message_id
    aliases = [alias, *(owner for owner in owners if owner != alias)]
    received_at = context.clock() if context is not None else time.time()
    async with store.db.transaction():
        await store.lock_message_ids([(candidate, provider_message_id) for candidate in aliases])
        for candidate in aliases:
            delivery = await store.find_delivery_by_provider_id(candidate, provider_message_id)
            if delivery is not None:
                return await _apply(
                    store, delivery, candidate, provider_message_id, status, detail, context, received_at
                )
        # the normal case on a fast gateway: its receipt overtakes the worker's record of the send. Kept once,
        # under the alias it came in on: the record of a send through a failover alias looks there too
        log.debug("receipt for message %s on %s kept until its send is recorded", provider_message_id, alias)
        await store.insert_receipt(None, alias, provider_message_id, status, detail, received_at=received_at)
        return ReceiptOutcome.UNKNOWN


async def apply_early_receipts(
    store: Store, delivery_ids: list[int], context: EngineContext | None, members: Sequence[str] = ()
) -> int:
    """Apply the receipts that arrived before these deliveries' sends were recorded, kept under the deliveries'
    alias or, for deliveries of a failover alias, under one of its ``members``; how many."""
    early = await store.early_receipts(delivery_ids, members) if delivery_ids else []
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
    received_at: float,
) -> ReceiptOutcome:
    if delivery["state"] in ("delivered", "failed") and status in ("delivered", "failed"):
        log.info("duplicate receipt for delivery %s ignored", delivery["id"])
        return ReceiptOutcome.DUPLICATE
    async with store.db.transaction():
        await store.insert_receipt(delivery["id"], alias, provider_message_id, status, detail, received_at=received_at)
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
