"""What the API calls besides the running Engine: check a new notice renders, cancel one, preview its reach."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from notifier.domain.errors import Conflict, FieldError, InvalidInput
from notifier.domain.models import Notice, NoticeIn
from notifier.domain.templates import TemplateVersion
from notifier.engine.personal import bind_row, row_problems
from notifier.engine.quiet import local_seconds
from notifier.engine.render import DEFAULT_TEMPLATE, Renderer, RenderError
from notifier.engine.render_threads import rendered
from notifier.store import Store
from subscribers.targeting import plan_target


async def cancel_notice(store: Store, notice_id: int, actor: str) -> int:
    """Cancel a notice at any point before it is done; the number of deliveries stopped.

    Queued deliveries (resident and area ones) become skipped in the same transaction; one already handed to a worker
    is skipped by that worker before the provider call. Raises Conflict for a finished notice.
    """
    skipped = await store.cancel_notice_row(notice_id, actor)
    if skipped is None:
        notice = await store.get_notice(notice_id)
        raise Conflict(f"notice {notice_id} is {notice.state.value} and can no longer be cancelled")
    return skipped


async def check_renders(store: Store, notice: NoticeIn, department: str, renderer: Renderer) -> TemplateVersion:
    """The latest version of the notice's template (``notice`` for a body), which the notice is to record and
    render with. Refuses (InvalidInput naming ``template`` or ``data.<field>``) a notice whose template is
    unknown, whose data lacks a declared field, or which does not render for every channel kind it asks for
    in every language of the template, so it cannot fail at fan-out."""
    name = notice.template or DEFAULT_TEMPLATE
    version = await store.template_version(name)
    if version is None:
        raise InvalidInput(f"no template named {name}", [FieldError("template", f"no template named {name}")])
    department_name = (await store.get_department(department)).name
    context = renderer.context({**notice.model_dump(mode="json"), "department": department}, department_name)
    kinds = [kind.value for kind in notice.channels]
    columns = None
    if notice.target.roster is not None:
        columns = json.loads((await store.roster_row(notice.target.roster))["columns"])
    problems = await rendered(_render_problems, renderer, version, notice.body, kinds, context, columns)
    if problems:
        raise InvalidInput(f"the notice does not render: {problems[0].loc}: {problems[0].msg}", problems)
    return version


def _render_problems(
    renderer: Renderer,
    version: TemplateVersion,
    body: str | None,
    kinds: list[str],
    context: dict[str, Any],
    columns: list[str] | None,
) -> list[FieldError]:
    """Why the notice would not render (its roster's placeholders first), rendering every kind in every
    language: in a render thread."""
    problems = row_problems(renderer, version, body, kinds, columns)
    if not problems and columns is not None:
        try:
            context = bind_row(renderer, context, columns)
        except RenderError as exc:
            problems = [FieldError("body", str(exc))]
    return problems or renderer.problems(version, kinds, context)


async def preview(
    store: Store,
    notice: Notice | NoticeIn,
    *,
    served: list[str] | None = None,
    chunk: int = 5000,
    timezone: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Residents and deliveries per channel per town the notice would produce, before approval, with why the
    skipped ones are skipped (``skipped_by_reason``, see the ``preview_chunk_skips`` query).

    ``served`` limits channels to the kinds configured aliases serve (all requested kinds if None).
    With ``timezone`` (the server's), ``held_by_quiet_hours`` counts the residents whose message would wait
    for their quiet hours to end if the notice went out at ``now`` (default: this moment).
    Runs the fan-out's own queries on staging tables, chunk by chunk, and writes no delivery.
    """
    params = await _preview_params(store, notice, served)
    if timezone is not None:
        at = time.time() if now is None else now
        params.update(urgent=notice.severity.is_urgent, now=int(at), local=local_seconds(at, timezone))
    towns: dict[str, dict[str, Any]] = defaultdict(_empty_town)
    after = 0
    while (upto := await store.chunk_end(after, chunk)) is not None:
        async with store.db.transaction():
            await store.stage_chunk({**params, "after": after, "upto": upto})
            for row in await store.staged_summary():
                _add_summary_row(towns[row["town"]], row["channel"], int(row["n"]))
            for row in await store.staged_skips(params["channels"]):
                reasons = towns[row["town"]]["skipped_by_reason"]
                reasons[row["reason"]] = reasons.get(row["reason"], 0) + int(row["n"])
            if timezone is not None:
                for row in await store.staged_held(params["now"]):
                    towns[row["town"]]["held_by_quiet_hours"] += int(row["n"])
        after = upto
    return _summarise(towns)


def _empty_town() -> dict[str, Any]:
    return {"residents": 0, "reached": 0, "deliveries": {}, "skipped_by_reason": {}, "held_by_quiet_hours": 0}


async def _preview_params(store: Store, notice: Notice | NoticeIn, served: list[str] | None) -> dict[str, Any]:
    target = notice.target.model_dump(mode="json")
    references = notice.references
    plan = plan_target(
        target,
        notice.topic,
        references,
        await store.codes_to_ids("group", list(target.get("groups") or [])),
        await store.codes_to_ids("topic", list(target.get("topics") or [])),
    )
    channels = [c.value for c in notice.channels if served is None or c.value in served]
    return {
        **plan.params(),
        "channels": json.dumps(channels),
        "all_channels": notice.channel_mode.value == "all",
        # without a timezone the summary ignores when deliveries would be due; these only bind the shared query
        "urgent": True,
        "now": 0,
        "local": 0,
    }


def _add_summary_row(town: dict[str, Any], channel: str, n: int) -> None:
    if channel == "":
        town["residents"] += n
    elif channel == "*":
        town["reached"] += n
    else:
        town["deliveries"][channel] = town["deliveries"].get(channel, 0) + n


def _summarise(towns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    deliveries: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    for town in towns.values():
        town["skipped"] = town["residents"] - town["reached"]
        for channel, n in town["deliveries"].items():
            deliveries[channel] += n
        for reason, n in town["skipped_by_reason"].items():
            reasons[reason] += n
    residents = sum(t["residents"] for t in towns.values())
    reached = sum(t["reached"] for t in towns.values())
    return {
        "residents": residents,
        "reached": reached,
        "skipped": residents - reached,
        "deliveries": dict(deliveries),
        "skipped_by_reason": dict(reasons),
        "held_by_quiet_hours": sum(t["held_by_quiet_hours"] for t in towns.values()),
        "towns": {code: towns[code] for code in sorted(towns)},
    }
