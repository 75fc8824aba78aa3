"""Transactional messages to one address (verification codes, /me links): sent before any notice.

The resident pages queue them (``direct_messages``); here each alias's worker claims them first, under the
same rate limiter, batch limit and lease as deliveries (``dispatch.claim_next``), and records what the gateway
said:

    Sent    -> sent; the text (it holds the code or link) is blanked
    Failed  -> queued at once on the next alias of the same kind (the backup gateway), else failed
    Retry   -> the same: a code is useless within minutes, so a gateway that is down is not waited for;
               on the last alias, queued again after the retry policy's delay until the deadline, then failed

They have no notice and no resident (a resident may not exist yet), so the adapters see ``notice_id`` 0 and
``delivery_id`` minus the message's id: never an outbox file or a provider id of a delivery.
"""

from __future__ import annotations

import asyncio
import logging

from channels.base import OutboundMessage, Retry, SendResult, Sent
from notifier.engine.context import EngineContext
from notifier.store.database import Row

log = logging.getLogger(__name__)

PRIORITY = 1_000  # above every severity's priority: adapters that order by it put these first


def message_of(row: Row) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=-int(row["id"]),
        notice_id=0,
        channel=row["channel"],
        alias=row["alias"],
        recipient=row["address"],
        text=row["text"],
        subject=row["subject"],
        html=row["html"],
        idempotency_key=f"direct-{row['id']}",
        priority=PRIORITY,
    )


async def send_direct(ctx: EngineContext, alias: str, rows: list[Row]) -> int:
    """Send and record a batch of an alias's direct messages, claimed by ``dispatch.record_and_claim``; how many."""
    from notifier.engine.dispatch import keep_trying, send_batch  # dispatch calls this module

    lease_end = ctx.clock() + ctx.settings.engine.lease_seconds
    results = await send_batch(ctx, ctx.channels[alias], [message_of(row) for row in rows])
    await asyncio.shield(keep_trying(ctx, alias, lease_end, lambda: record_direct(ctx, rows, results)))
    return len(rows)


async def record_direct(ctx: EngineContext, rows: list[Row], results: list[SendResult]) -> None:
    now = ctx.clock()
    async with ctx.store.db.transaction():
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Sent):
                await ctx.store.direct_message_sent(row["id"], ctx.worker, result.provider_message_id, now)
                log.info("direct message %d (%s) sent via %s", row["id"], row["purpose"], row["alias"])
                continue
            reason = f"{row['alias']}: {result.reason if isinstance(result, Retry) else result.reason_code}"
            if isinstance(result, Retry) and not result.started:  # never handed over: the same alias, at once
                await ctx.store.requeue_direct_message(row["id"], ctx.worker, row["alias"], now, reason)
                continue
            backup = ctx.next_alias(row["channel"], row["alias"])
            if backup is not None:
                await ctx.store.requeue_direct_message(row["id"], ctx.worker, backup, now, reason)
                log.info("direct message %d not sent on %s; handed to %s", row["id"], row["alias"], backup)
                continue
            if isinstance(result, Retry):
                decision = ctx.policy.decide(row["attempts"], result.retry_after, now, row["deadline"])
                if decision.retry:
                    await ctx.store.requeue_direct_message(
                        row["id"], ctx.worker, row["alias"], now + decision.delay, reason
                    )
                    continue
            await ctx.store.direct_message_failed(row["id"], ctx.worker, reason)
            log.warning("direct message %d (%s) given up: %s", row["id"], row["purpose"], reason)
