"""Step 5 of a notice's journey: write what the provider said, and decide what happens next.

The same for a delivery to a resident and to an area (kinds bot and bulletin, ``engine.areas``):
Sent     -> sent (a resident's with a confirm-by time when the confirm window is on; an area's with its
            first print-job poll when its adapter can be asked, ``areas.poll_window``)
Retry    -> queued again after the policy's delay, or given up (attempts) / skipped (deadline); one the
            adapter never started (the batch's time ran out first) queued again at once, its try not counted
Failed   -> queued on the next alias of the same kind (a backup gateway; for an area, the next that
            reaches it), else given up
given up -> fallback (and a new delivery on the resident's next channel) in first-available
            mode when there is a next channel; failed otherwise, and always for an area: a printout is
            not replaced by a bot post
"""

from __future__ import annotations

import json
import logging

from channels.base import Failed, Retry, SendResult, Sent
from notifier.domain.enums import Severity
from notifier.engine.areas import alias_for_area, poll_window
from notifier.engine.context import EngineContext
from notifier.engine.fanout import requested_channels
from notifier.engine.quiet import local_seconds, seconds_until_quiet_ends
from notifier.store.database import Row
from subscribers.targeting import ADDRESS_FIELD, next_channel

log = logging.getLogger(__name__)


async def record_results(
    ctx: EngineContext, rows: list[Row], notices: dict[int, Row], results: list[SendResult]
) -> None:
    """Write a batch's results in one transaction (callers shield it from cancellation)."""
    now = ctx.clock()
    sent: list[tuple[int, str, float | None, float | None]] = []
    looks: dict[tuple[bool, str, int], tuple[float | None, float | None]] = {}  # look_again's, the same for a batch
    async with ctx.store.db.transaction():
        for row, result in zip(rows, results, strict=True):
            notice = notices[row["notice_id"]]
            if isinstance(result, Sent):
                key = (row.get("area_code") is not None, row["alias"], row["notice_id"])
                look = looks.get(key)
                if look is None:
                    look = looks[key] = look_again(ctx, row, notice, now)
                sent.append((row["id"], result.provider_message_id, *look))
            elif isinstance(result, Retry):
                await on_retry(ctx, row, notice, result, now)
            else:
                await on_failed(ctx, row, notice, result, now)
        await ctx.store.record_sent(ctx.worker, sent)
        await ctx.store.mark_notices_sending(notices)


def look_again(ctx: EngineContext, row: Row, notice: Row, now: float) -> tuple[float | None, float | None]:
    """(due_at, poll_until) of a sent message: a resident's confirm-by time, an area's print-job polls. Depends on
    the row only through its kind of target (area or resident) and alias, on the notice through its channel mode:
    ``record_results`` asks once per batch for each of those."""
    if row.get("area_code") is not None:
        return poll_window(ctx, row["alias"], now)
    return confirm_by(ctx, row, notice, now), None


def confirm_by(ctx: EngineContext, row: Row, notice: Row, now: float) -> float | None:
    """When a sent message with no receipt by then is handed to the resident's next channel; None: never."""
    window = ctx.settings.engine.confirm_window
    if window <= 0 or notice["channel_mode"] != "first-available":
        return None
    channel = ctx.channels.get(row["alias"])
    if channel is None or not channel.reports_delivery():
        return None
    return now + window


async def on_retry(ctx: EngineContext, row: Row, notice: Row, result: Retry, now: float) -> None:
    if not result.started:  # the batch's time ran out before its turn: nothing was sent, and it was no try
        await ctx.store.return_unstarted(row["id"], ctx.worker, result.reason)
        return
    decision = ctx.policy.decide(row["attempts"], result.retry_after, now, row["deadline"])
    if decision.retry:
        await ctx.store.requeue_delivery(row["id"], ctx.worker, now + decision.delay, row["alias"], result.reason)
    elif decision.reason == "deadline":
        await ctx.store.close_delivery(
            row["id"], state="skipped", from_state="sending", error=f"expired: {result.reason}", worker=ctx.worker
        )
    else:
        await give_up(ctx, row, notice, f"retries exhausted: {result.reason}", now, from_state="sending")


async def on_failed(ctx: EngineContext, row: Row, notice: Row, result: Failed, now: float) -> None:
    reason = f"{result.reason_code}: {result.detail}" if result.detail else result.reason_code
    if row.get("area_code") is not None:
        backup = alias_for_area(ctx, row["channel"], row["area_code"], after=row["alias"])
    else:
        backup = ctx.next_alias(row["channel"], row["alias"])
    if backup is not None:
        await ctx.store.requeue_delivery(row["id"], ctx.worker, now, backup, f"{row['alias']}: {reason}")
        return
    await give_up(ctx, row, notice, reason, now, from_state="sending")


async def give_up(ctx: EngineContext, row: Row, notice: Row, reason: str, now: float, *, from_state: str) -> None:
    """No more tries on this channel: hand over to the resident's next channel, or fail."""
    worker = ctx.worker if from_state == "sending" else None
    falls_back = row.get("area_code") is None and notice["channel_mode"] == "first-available"
    next_kind = await create_fallback(ctx, row, notice, now) if falls_back else None
    state = "fallback" if next_kind else "failed"
    await ctx.store.close_delivery(row["id"], state=state, from_state=from_state, error=reason, worker=worker)
    log.info("delivery %s %s (%s)%s", row["id"], state, reason, f" -> {next_kind}" if next_kind else "")


async def create_fallback(ctx: EngineContext, row: Row, notice: Row, now: float) -> str | None:
    """Queue the notice on the resident's next usable channel; the channel kind, or None."""
    subject = await ctx.store.fallback_subject(row["notice_id"], row["subscriber_id"])
    if subject is None or not subject["eligible"]:
        return None
    kind = next_channel(
        json.loads(subject["channels"]),
        requested_channels(ctx, notice),
        subject,
        json.loads(subject["refused"]),
        json.loads(subject["tried"]),
    )
    if kind is None:
        return None
    urgent = row["priority"] >= Severity.SEVERE.priority
    local = local_seconds(now, ctx.settings.server.timezone)
    wait = 0 if urgent else seconds_until_quiet_ends(local, subject["quiet_start"], subject["quiet_end"])
    inserted = await ctx.store.insert_delivery(
        {
            "notice_id": row["notice_id"],
            "subscriber_id": row["subscriber_id"],
            "channel": kind,
            "alias": ctx.aliases_of(kind)[0],
            "rank": row["rank"] + 1,
            "priority": row["priority"],
            "due_at": now + wait,
            "deadline": row["deadline"],
            "address": subject[ADDRESS_FIELD[kind]],
        }
    )
    return kind if inserted else None
