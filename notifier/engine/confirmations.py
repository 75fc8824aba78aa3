"""Confirmations: a resident confirms a notice that asks for it; the unconfirmed get one reminder.

A notice with ``confirmation`` is rendered with a ``confirm`` mark (``mark_confirming``); each of its messages
then carries ``OutboundMessage.confirm_url``, a signed link naming the delivery (``signing.ConfirmLinks``).
SMS adapters end such a message with their reply wording (``回复1确认收到``) and ignore the link; e-mail and
WeCom texts get the link appended (``with_confirm_link``), a WeChat template message opens it on a tap.

    SMS reply of the alias's confirm_word   -> the SMS delivery of the latest notice still awaiting this
                                               number's confirmation becomes ``confirmed`` (confirm_by_reply)
    POST /confirm?token=...                 -> the delivery the token names (notifier.web.confirm)

Only a delivery that was sent (``sent``, ``delivered``, or ``fallback`` after a silent receipt window) can be
confirmed; a resident confirms a notice once (a second reply or click changes nothing). Each confirmation is
audited (``delivery.confirmed``).

Reminders (``remind_unconfirmed``, a housekeeping chore at most every ``REMIND_EVERY`` seconds): for each
notice with ``remind_after_minutes`` in scheduled, sending or done state (issued in the last
``REMIND_HORIZON``), every resident with a message sent at least that long ago, none confirmed and none still
queued, gets one more delivery on their next channel among the notice's (the fallback rule: their preference
order, an address, not refused); a resident with no next channel (one channel only, or every other one used
or refused) gets their last message again on the same channel (``resend_on_same_channel``: the delivery is
queued once more with the content it was rendered with, so a roster notice's personal text and the confirm
wording come back unchanged). ``confirmation_reminders`` records that it happened, also when the resident
could be reached on no channel at all, so each resident is reminded once. Whoever is still unconfirmed is on
the follow-up list.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum

from notifier.domain.enums import Severity
from notifier.engine.confirm_marks import asks_confirmation, mark_confirming, with_confirm_link
from notifier.engine.context import EngineContext
from notifier.engine.fanout import requested_channels
from notifier.engine.outcomes import create_fallback
from notifier.engine.quiet import local_seconds, seconds_until_quiet_ends
from notifier.store import Store
from notifier.store.common import iso
from notifier.store.database import Row
from subscribers.targeting import ADDRESS_FIELD, available_channels

log = logging.getLogger(__name__)

REMIND_EVERY = 30.0
REMIND_HORIZON = 30 * 86400.0


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the delivery is confirmed now
    ALREADY = "already"  # the resident had confirmed this notice before
    NOT_ASKED = "not-asked"  # the notice asks for no confirmation, or the message was never sent
    UNKNOWN = "unknown"  # no such delivery, or nothing awaits this number's confirmation


async def confirm_delivery(store: Store, delivery_id: int, *, actor: str, via: str) -> ConfirmOutcome:
    """Confirm one delivery of a notice asking for confirmation; audited."""
    row = await store.delivery_for_confirmation(delivery_id)
    if row is None:
        return ConfirmOutcome.UNKNOWN
    if row["confirmation"] is None:
        return ConfirmOutcome.NOT_ASKED
    if row["confirmed_delivery"] is not None:
        return ConfirmOutcome.ALREADY
    async with store.db.transaction():
        if not await store.confirm_delivery(delivery_id):
            return ConfirmOutcome.NOT_ASKED
        await store.audit(actor, "delivery.confirmed", "delivery", delivery_id,
                          {"notice": row["notice_id"], "channel": row["channel"], "via": via})
    log.info("delivery %s of notice %s confirmed (%s)", delivery_id, row["notice_id"], via)
    return ConfirmOutcome.CONFIRMED


async def confirm_by_reply(store: Store, phone: str, alias: str) -> ConfirmOutcome:
    """A confirm word from ``phone``: confirm the latest notice awaiting that resident's confirmation."""
    subscriber_id = await store.find_subscriber_by_phone(phone)
    if subscriber_id is None:
        return ConfirmOutcome.UNKNOWN
    awaiting = await store.awaiting_confirmation_by_sms(subscriber_id)
    if awaiting is None:
        return ConfirmOutcome.UNKNOWN
    return await confirm_delivery(store, int(awaiting["id"]), actor="sms-reply", via=alias)


def _at(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC)) or ""


async def resend_on_same_channel(ctx: EngineContext, row: Row, notice: Row, now: float) -> str | None:
    """Queue the resident's last message of the notice again on its own channel; the channel kind, or None
    when that channel is no longer usable (refused, no address, not served, the resident gone)."""
    subject = await ctx.store.fallback_subject(row["notice_id"], row["subscriber_id"])
    last = await ctx.store.latest_sent_delivery(row["notice_id"], row["subscriber_id"])
    if subject is None or not subject["eligible"] or last is None:
        return None
    kind = last["channel"]
    usable = available_channels(json.loads(subject["channels"]), requested_channels(ctx, notice), subject,
                                json.loads(subject["refused"]))  # fmt: skip
    aliases = ctx.aliases_of(kind)
    if kind not in usable or not aliases:
        return None
    local = local_seconds(now, ctx.settings.server.timezone)
    urgent = row["priority"] >= Severity.SEVERE.priority  # as a fallback: quiet hours hold back no alert
    wait = 0 if urgent else seconds_until_quiet_ends(local, subject["quiet_start"], subject["quiet_end"])
    resent = await ctx.store.resend_delivery(last["id"], aliases[0], subject[ADDRESS_FIELD[kind]], now + wait)
    return kind if resent else None


async def remind_unconfirmed(ctx: EngineContext, now: float, limit: int = 500) -> int:
    """One reminder on the next channel for each resident unconfirmed past the notice's time; how many handled."""
    if now < ctx.reminders_at:
        return 0
    ctx.reminders_at = now + REMIND_EVERY
    handled = 0
    for notice in await ctx.store.notices_to_remind(_at(now - REMIND_HORIZON)):
        minutes = json.loads(notice["confirmation"]).get("remind_after_minutes")
        if not minutes:
            continue
        rows = await ctx.store.reminder_candidates(notice["id"], _at(now - minutes * 60), limit)
        sent = 0
        for row in rows:
            async with ctx.store.db.transaction():
                kind = await create_fallback(ctx, row, notice, now)
                if kind is None:
                    kind = await resend_on_same_channel(ctx, row, notice, now)
                await ctx.store.record_reminder(notice["id"], row["subscriber_id"], kind)
            sent += kind is not None
        if rows:
            log.info("notice %s: %d residents unconfirmed after %d minutes, %d reminded",
                     notice["id"], len(rows), minutes, sent)
        handled += len(rows)
    if handled:
        ctx.reminders_at = 0.0  # more may be waiting: look again on the next pass
    return handled


__all__ = [
    "ConfirmOutcome",
    "asks_confirmation",
    "confirm_by_reply",
    "confirm_delivery",
    "mark_confirming",
    "remind_unconfirmed",
    "with_confirm_link",
]
