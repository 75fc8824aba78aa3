"""Step 2 and 3 of a notice's journey: render it once per channel, then fan it out to deliveries.

The fan-out runs in SQL (``fanout_match``, ``fanout_choose``, ``fanout_insert_deliveries``; on PostgreSQL
the last does all three in one statement), one chunk of ``fanout_batch_size`` subscriber ids (unset: the
database's ``fanout_chunk``) per transaction, so memory does not grow with the audience (a target that only
lists residents reads only the spans of ids that hold them). Each chunk moves ``notices.fanout_cursor`` in
the same transaction as its deliveries, so a crash resumes at the first unfinished chunk; the UNIQUE
(notice, subscriber, channel) key makes a repeated chunk harmless. A lease on the notice keeps two processes
from fanning out one notice.
Kinds ``bot`` and ``bulletin`` get one delivery per area after the residents (``areas.fan_out_areas``).
The rendering (every kind in every language) runs in a render thread (``render_threads``), off the loop.
"""

from __future__ import annotations

import bisect
import json
import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from notifier.domain.enums import Severity
from notifier.engine.areas import AREA_KINDS, fan_out_areas
from notifier.engine.confirm_marks import mark_confirming
from notifier.engine.context import EngineContext
from notifier.engine.notice_render import render_kinds
from notifier.engine.personal import tag_personal
from notifier.engine.quiet import local_seconds
from notifier.engine.render import DEFAULT_TEMPLATE, RenderError
from notifier.engine.render_threads import rendered
from notifier.store import Store
from notifier.store.common import iso
from notifier.store.database import Row
from subscribers.targeting import TargetPlan, plan_target

log = logging.getLogger(__name__)


def epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


async def resolve_target(store: Store, notice: Row) -> TargetPlan:
    target = json.loads(notice["target"]) if isinstance(notice["target"], str) else notice["target"]
    return plan_target(
        target,
        notice["topic"],
        notice.get("references_id"),
        await store.codes_to_ids("group", list(target.get("groups") or [])),
        await store.codes_to_ids("topic", list(target.get("topics") or [])),
    )


def requested_channels(ctx: EngineContext, notice: Row) -> list[str]:
    """The notice's channel kinds that some configured alias serves."""
    channels = json.loads(notice["channels"]) if isinstance(notice["channels"], str) else notice["channels"]
    served = set(ctx.served_kinds())
    return [kind for kind in channels if kind in served]


async def fanout_params(ctx: EngineContext, notice: Row, now: float) -> dict[str, Any]:
    """Every parameter the fan-out queries bind, for one notice at time ``now``."""
    severity = Severity(notice["severity"])
    channels = requested_channels(ctx, notice)
    plan = await resolve_target(ctx.store, notice)
    return {
        **plan.params(),
        "notice_id": notice.get("id"),
        "channels": json.dumps(channels),
        "all_channels": notice["channel_mode"] == "all",
        "aliases": json.dumps({kind: ctx.aliases_of(kind)[0] for kind in channels}),
        "priority": severity.priority,
        "urgent": severity.is_urgent,
        "deadline": epoch(notice.get("expires_at")),
        **timing_params(ctx, now),
    }


def timing_params(ctx: EngineContext, now: float) -> dict[str, Any]:
    return {
        "now": int(now),
        "local": local_seconds(now, ctx.settings.server.timezone),
        "lease_until": now + ctx.settings.engine.lease_seconds,
        "now_iso": iso(datetime.fromtimestamp(now, UTC)),
    }


async def render_notice(ctx: EngineContext, notice: Row) -> dict[str, dict[str, str | None]]:
    """The notice's text per requested channel kind, with the version of its template it recorded (the latest
    for a notice older than versioned templates): under the kind for the fallback language, and for a resident
    kind under ``kind:language`` for each other language the template has a text of it in (``content_key``).
    RenderError when the version is gone or a source fails."""
    name = notice["template"] or DEFAULT_TEMPLATE
    version = await ctx.store.template_version(name, notice.get("template_version"))
    if version is None:
        raise RenderError(f"template {name} version {notice.get('template_version')} is not in the database")
    department = await ctx.store.get_department(notice["department"])
    row = {**notice, "data": json.loads(notice["data"]) if isinstance(notice["data"], str) else notice["data"]}
    context = ctx.templates.context(row, department.name, issued_at=issued_at(ctx, notice))
    roster_id = notice.get("roster_id")
    columns: list[str] | None = None
    if roster_id is not None:  # a roster notice: markers where each recipient's cells go (engine.personal)
        columns = json.loads((await ctx.store.roster_row(int(roster_id)))["columns"])
    kinds = requested_channels(ctx, notice)
    translated = [kind for kind in kinds if kind not in AREA_KINDS]  # an area's message is in one language
    contents = await rendered(render_kinds, ctx.templates, version, kinds, context, columns, translated)
    return contents if roster_id is None or columns is None else tag_personal(contents, int(roster_id), columns)


def issued_at(ctx: EngineContext, notice: Row) -> str:
    """The notice's approval time in the server's timezone (RFC 3339): the date a printout bears.

    A notice is rendered while still ``approved``, so its ``updated_at`` is the approval's time.
    """
    stamp = notice.get("updated_at")
    if not stamp:
        return ""
    zone = ZoneInfo(ctx.settings.server.timezone)
    return datetime.fromisoformat(stamp).astimezone(zone).isoformat(timespec="seconds")


async def fan_out_next(ctx: EngineContext) -> int | None:
    """Claim one approved, due notice and fan it out completely; its id, or None when none is due."""
    notice = await ctx.store.claim_notice_for_fanout(ctx.worker, ctx.clock(), ctx.settings.engine.lease_seconds)
    if notice is None:
        return None
    try:
        contents = await render_notice(ctx, notice)
    except RenderError as exc:
        await stop_unrenderable(ctx, notice, str(exc))
        return int(notice["id"])
    await ctx.store.store_rendered(notice["id"], mark_confirming(contents) if notice.get("confirmation") else contents)
    await fan_out(ctx, notice)
    return int(notice["id"])


async def stop_unrenderable(ctx: EngineContext, notice: Row, reason: str) -> None:
    """Cancel a notice whose template no longer renders (it was checked when the notice was created, so the
    template changed since), keep the reason on the notice and tell the issuer: an ERROR line naming the
    notice, its department and the template's error (never the notice's data), and the notice counts in
    the ``notifier_notices_failed`` metric from then on."""
    async with ctx.store.db.transaction():
        if await ctx.store.cancel_notice_row(notice["id"], "engine") is None:
            return  # cancelled or finished meanwhile
        await ctx.store.record_notice_failure(notice["id"], reason, "engine")
    log.error(
        "notice %s of department %s stopped before sending, its template does not render: %s",
        notice["id"],
        notice["department"],
        reason,
    )


def listed_only(params: dict[str, Any]) -> list[int] | None:
    """The residents a target lists, in id order, when it names nobody else (no areas, groups, topics or
    earlier notice); None when a rule decides."""
    if params["has_rule"] or params["referenced_id"] is not None:
        return None
    return sorted(set(json.loads(params["subscriber_ids"])))


async def next_chunk(ctx: EngineContext, after: int, size: int, listed: list[int] | None) -> tuple[int, int] | None:
    """The next chunk after the cursor, as (ids after, up to and including): ``size`` residents in id order,
    or for a target that only lists residents, the span of its next ``size`` listed ids (no other resident
    can match, so the rest of the table is not read); None when the fan-out is complete."""
    if listed is None:
        upto = await ctx.store.chunk_end(after, size)
        return None if upto is None else (after, upto)
    first = bisect.bisect_right(listed, after)
    rest = listed[first : first + size]
    return (rest[0] - 1, rest[-1]) if rest else None


async def fan_out(ctx: EngineContext, notice: Row) -> None:
    """Create the notice's deliveries chunk by chunk from its cursor on, then mark it scheduled."""
    after = int(notice["fanout_cursor"])
    size = ctx.settings.engine.fanout_batch_size or ctx.store.db.fanout_chunk
    fixed = await fanout_params(ctx, notice, ctx.clock())
    listed = listed_only(fixed)
    if fixed["roster_id"] is not None and fixed["areas"] == "[]" and not (fixed["has_groups"] or fixed["has_topics"]):
        listed = await ctx.store.roster_subscriber_ids(int(fixed["roster_id"]))  # only its rows' spans are read
    while (chunk := await next_chunk(ctx, after, size, listed)) is not None:
        start, upto = chunk
        params = {**fixed, **timing_params(ctx, ctx.clock()), "after": start, "upto": upto}
        if not await ctx.store.fan_out_chunk(notice["id"], ctx.worker, after, upto, params):
            log.info("fan-out of notice %s stopped: cancelled or taken over", notice["id"])
            return
        after = upto
    await fan_out_areas(ctx, notice, requested_channels(ctx, notice), fixed["deadline"])
    if await ctx.store.finish_fanout(notice["id"], ctx.worker):
        log.info("notice %s fanned out", notice["id"])
