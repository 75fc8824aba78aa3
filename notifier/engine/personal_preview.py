"""What a roster notice's preview shows besides its reach: three recipients' texts as they will read them, and
the longest SMS with the parts it is billed as (each recipient's SMS has its own length)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from channels.base import Channel
from channels.sms_text import count_segments
from notifier.config import Settings
from notifier.domain.models import Notice, NoticeIn
from notifier.engine.notice_render import render_kinds
from notifier.engine.personal import personalise, tag_personal
from notifier.engine.render import DEFAULT_TEMPLATE, Renderer, RenderError
from notifier.engine.render_threads import rendered
from notifier.engine.sms_bill import sms_routes
from notifier.store import Store

SAMPLES = 3


class PersonalSample(BaseModel):
    row: int = Field(description="the roster's data row")
    texts: dict[str, str] = Field(description="the text per channel kind, as this recipient reads it")


class LongestSms(BaseModel):
    row: int = Field(description="the roster row whose SMS is the longest")
    text: str = Field(description="that SMS as the primary SMS gateway receives it")
    chars: int
    parts: int = Field(description="parts it is billed as")
    parts_all_recipients: int = Field(description="parts billed for every recipient's own SMS, summed")


class PersonalPreview(BaseModel):
    samples: list[PersonalSample]
    longest_sms: LongestSms | None


async def _audit(store: Store, actor: str, roster_id: int, shown: list[int]) -> None:
    if shown:
        await store.audit(actor, "roster.read", "roster", roster_id, {"rows": len(shown), "preview": True})


async def personal_preview(
    store: Store,
    notice: Notice | NoticeIn,
    settings: Settings,
    renderer: Renderer,
    channels: Mapping[str, Channel],
    *,
    actor: str,
    department_code: str | None = None,
) -> PersonalPreview | None:
    """None for a notice that targets no roster, or whose texts do not render. A draft (``NoticeIn``, as
    ``POST /notice-preview`` has it) renders with the latest template version, as the department
    ``department_code`` that would create it. The samples and the longest SMS show roster rows: the read is
    audited (``roster.read`` by ``actor``, the rows shown, never their cells)."""
    roster_id = notice.target.roster
    if roster_id is None:
        return None
    roster = await store.roster_row(roster_id)
    code = notice.department if isinstance(notice, Notice) else department_code or ""
    department = await store.get_department(code)
    issued_at = datetime.now(ZoneInfo(settings.server.timezone)).isoformat(timespec="seconds")
    context = renderer.context({**notice.model_dump(mode="json"), "department": code}, department.name,
                               issued_at=issued_at)  # fmt: skip
    kinds = [kind.value for kind in notice.channels]
    pinned = notice.template_version if isinstance(notice, Notice) else None
    version = await store.template_version(notice.template or DEFAULT_TEMPLATE, pinned)
    if version is None:
        return None
    try:
        contents = await rendered(render_kinds, renderer, version, kinds, context, json.loads(roster["columns"]))
    except RenderError:
        return None
    contents = tag_personal(contents, roster_id, json.loads(roster["columns"]))
    rows = await store.roster_sample_rows(roster_id)
    samples = [
        PersonalSample(row=number, texts={kind: personalise(contents[kind], cells)["text"] or "" for kind in kinds})
        for number, cells in rows[:SAMPLES]
    ]
    routes = sms_routes(settings, channels)
    if "sms" not in contents or not routes or not rows:
        await _audit(store, actor, roster_id, [sample.row for sample in samples])
        return PersonalPreview(samples=samples, longest_sms=None)
    gateway = channels[routes[0]]
    longest: LongestSms | None = None
    total = 0
    for number, cells in rows:
        text = gateway.gateway_text(personalise(contents["sms"], cells)["text"] or "")
        info = count_segments(text)
        total += info.segments
        if longest is None or (info.segments, info.chars) > (longest.parts, longest.chars):
            longest = LongestSms(row=number, text=text, chars=info.chars, parts=info.segments, parts_all_recipients=0)
    assert longest is not None
    await _audit(store, actor, roster_id, sorted({*(sample.row for sample in samples), longest.row}))
    return PersonalPreview(samples=samples, longest_sms=longest.model_copy(update={"parts_all_recipients": total}))
