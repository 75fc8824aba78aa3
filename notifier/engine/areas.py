"""Area deliveries: the channel kinds ``bot`` and ``bulletin`` reach an area, not a resident.

A notice for a town is posted into that town's and its villages' resident groups (``bot``) and
printed for each village's notice board (``bulletin``). One area delivery per (notice, area, kind),
with the area code as the message's recipient. Area deliveries are rows of the one delivery queue
(``area_code`` set instead of ``subscriber_id``): claimed, sent and recorded by ``engine.dispatch`` and
``engine.outcomes`` like a resident's, under the same lease and rate limits.

Which areas (``plan_area_deliveries``), at fan-out, after the residents:
    - the target's areas and every area under them (a town covers its villages); a target with no
      areas but groups or topics is county-wide: every area. Groups and topics do not narrow an
      area channel: a group chat or a notice board is public. A target naming only residents
      (``subscribers``, or ``referenced`` ones) is personal and gets no area delivery.
    - of those, the areas an alias of the kind reaches: the levels its adapter's ``area_levels()``
      names (group bots: county, town, village; the bulletin: villages, and towns with its option
      ``print_for_towns``; an adapter without a say, like the outbox: towns and villages for
      ``bot``, villages for ``bulletin``),
      and, when its ``covered_areas()`` is a set (a bot's ``areas`` table), only the codes in it.
      Each area goes to the first alias of the kind, in configured order, that reaches it.
    - sent at once whatever the severity: quiet hours are a resident's, not a group's.

Outcomes (``engine.outcomes.record_results``):
    Sent     -> sent; when the adapter can be asked about the job (``channels.base.JobPoller``,
                the bulletin's print jobs), its first poll is due in ``POLL_EVERY`` seconds
    Retry    -> queued again after the RetryPolicy's delay; skipped past the notice's deadline;
                failed when the attempts are used up
    Failed   -> queued on the next alias of the kind that reaches the area, else failed
    There is no fallback to another kind: a printout is not replaced by a bot post.

Print confirmation (``poll_jobs``, a housekeeping chore): ``completed`` -> delivered,
``failed`` -> failed, ``pending`` -> asked again after ``POLL_EVERY`` seconds, until the confirm
window (``engine.confirm_window``, or ``POLL_MAX_AGE`` when it is 0) has passed since the send;
then polling stops and the delivery stays ``sent``.

A printout or a group post counts as reaching its area, never a resident: ``Notice.counts`` shows
kinds ``bot`` and ``bulletin`` per state, ``Notice.areas_reached`` the areas reached, and ``reach``
stays the share of targeted residents.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from channels.base import Channel, JobPoller, OutboundMessage
from notifier.domain.contacts import area_level
from notifier.domain.enums import Severity
from notifier.engine.context import EngineContext
from notifier.store.database import Row

log = logging.getLogger(__name__)

AREA_KINDS = frozenset({"bot", "bulletin"})
POLL_EVERY = 60.0  # seconds between two questions about one print job
POLL_MAX_AGE = 86400.0  # how long a print job is asked about when engine.confirm_window is 0
POLL_BATCH = 50
DEFAULT_LEVELS = {"bot": frozenset({"town", "village"}), "bulletin": frozenset({"village"})}


def levels_of(channel: Channel, kind: str) -> frozenset[str]:
    """The area levels an adapter of ``kind`` gets one delivery per area of."""
    levels = channel.area_levels()
    return DEFAULT_LEVELS.get(kind, frozenset()) if levels is None else levels


def reaches(channel: Channel, kind: str, code: str, level: str) -> bool:
    covered = channel.covered_areas()
    return level in levels_of(channel, kind) and (covered is None or code in covered)


def alias_for_area(ctx: EngineContext, kind: str, code: str, after: str | None = None) -> str | None:
    """The first alias of ``kind`` (after ``after``, when given) whose adapter reaches the area."""
    aliases = ctx.aliases_of(kind)
    if after is not None:
        aliases = aliases[aliases.index(after) + 1 :] if after in aliases else []
    level = area_level(code).value
    return next((alias for alias in aliases if reaches(ctx.channels[alias], kind, code, level)), None)


async def target_areas(ctx: EngineContext, notice: Row) -> list[Row]:
    """(code, level) of the areas a notice's target covers; none for a target of named residents only."""
    target = json.loads(notice["target"]) if isinstance(notice["target"], str) else notice["target"]
    codes = list(target.get("areas") or [])
    if not codes and not (target.get("groups") or target.get("topics")):
        return []
    return await ctx.store.areas_in_target(codes)


async def plan_area_deliveries(
    ctx: EngineContext, notice: Row, kinds: Iterable[str], now: float, deadline: float | None
) -> list[dict[str, Any]]:
    """One row per (area, kind) an alias reaches, ready for ``insert_area_deliveries``."""
    kinds = [kind for kind in kinds if kind in AREA_KINDS]
    if not kinds:
        return []
    areas = await target_areas(ctx, notice)
    priority = Severity(notice["severity"]).priority
    rows = []
    for kind in kinds:
        reach = [
            (alias, levels_of(ctx.channels[alias], kind), ctx.channels[alias].covered_areas())
            for alias in ctx.aliases_of(kind)
        ]
        for area in areas:
            code, level = area["code"], area["level"]
            alias = next(
                (a for a, levels, covered in reach if level in levels and (covered is None or code in covered)), None
            )
            if alias is not None:
                rows.append(
                    {
                        "area_code": code,
                        "channel": kind,
                        "alias": alias,
                        "priority": priority,
                        "due_at": now,
                        "deadline": deadline,
                    }
                )
    return rows


async def fan_out_areas(ctx: EngineContext, notice: Row, kinds: Iterable[str], deadline: float | None) -> int:
    """Queue the notice's area deliveries (idempotent: a repeated fan-out adds nothing); how many planned."""
    rows = await plan_area_deliveries(ctx, notice, kinds, ctx.clock(), deadline)
    if rows:
        await ctx.store.insert_area_deliveries(notice["id"], ctx.worker, rows)
        log.info("notice %s: %d area deliveries", notice["id"], len(rows))
    return len(rows)


def area_message(row: Row, content: dict[str, str | None]) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=row["id"],
        notice_id=row["notice_id"],
        channel=row["channel"],
        alias=row["alias"],
        recipient=row["area_code"],
        text=content.get("text") or "",
        subject=content.get("subject"),
        html=content.get("html"),
        idempotency_key=f"n{row['notice_id']}-a{row['area_code']}-{row['channel']}",
        priority=row["priority"],
    )


def poll_window(ctx: EngineContext, alias: str, now: float) -> tuple[float | None, float | None]:
    """(first poll, last poll) of a sent message; (None, None) when its adapter cannot be asked."""
    if not isinstance(ctx.channels.get(alias), JobPoller):
        return None, None
    window = ctx.settings.engine.confirm_window or POLL_MAX_AGE
    return now + POLL_EVERY, now + window


async def poll_jobs(ctx: EngineContext, now: float, limit: int = POLL_BATCH) -> int:
    """Ask the adapters about sent area deliveries whose poll is due; the number asked about."""
    rows = await ctx.store.claim_area_polls(now, now + POLL_EVERY, limit)
    if rows:
        await asyncio.gather(*(poll_one(ctx, row, now) for row in rows))
    return len(rows)


async def poll_one(ctx: EngineContext, row: Row, now: float) -> None:
    channel = ctx.channels.get(row["alias"])
    if not isinstance(channel, JobPoller):
        await ctx.store.stop_area_poll(row["id"], f"alias {row['alias']} cannot be asked about its jobs")
        return
    try:
        async with asyncio.timeout(ctx.settings.engine.lease_seconds * 0.8):
            state = await channel.poll_job(row["provider_message_id"])
    except Exception as exc:  # an unreachable print server: ask again later
        ctx.errors.exception(exc, "asking %s about a job raised %s; asked again later", row["alias"],
                             type(exc).__name__)
        state = "pending"
    if state == "completed":
        await ctx.store.mark_delivered(row["id"])
    elif state == "failed":
        await ctx.store.close_delivery(
            row["id"], state="failed", from_state="sent", error="job failed at the provider", worker=None
        )
    elif row["poll_until"] is not None and now >= row["poll_until"]:
        await ctx.store.stop_area_poll(row["id"], "job not confirmed within the confirm window")
