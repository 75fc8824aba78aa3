"""The follow-up list of a notice that asks for confirmation: who has not confirmed, per village.

    GET /api/v1/notices/{id}/follow-up?area=&cursor=&limit=   JSON page of residents (name, village, phone,
                                                              the reminder sent, the state of each delivery)
    same with ``Accept: application/pdf``                     the whole list (``area`` narrows it) as a PDF:
                                                              one section per village, its town and name as
                                                              heading, the table header on every page, page
                                                              numbers, an empty column for the visit's notes

The list holds phone numbers: only keys of the notice's department read it (other notices are 404), and of its
residents only those the key reads (``personal_data_scope``: a county-wide notice also reaches residents outside
the department's topics and groups, whom its deliveries show by id only). Every read is audited
(``notice.follow_up``: the filter and the number of residents, never who). The PDF is laid out by WeasyPrint in
a worker thread, so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import Field

from channels.bulletin_render import html_to_pdf
from notifier.api.auth import actor, require
from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Route, page_response, path_int, read_query
from notifier.config import Settings
from notifier.domain.errors import Conflict
from notifier.domain.feedback import FollowUpResident
from notifier.domain.models import AreaCode, Notice, PersonalDataScope, Strict
from notifier.policy import notice_for_key, personal_data_scope
from notifier.store import Store
from notifier.store.common import decode_cursor, page

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "follow_up"
PDF_MEDIA = "application/pdf"
PDF_PAGE = 1000


class FollowUpQuery(Strict):
    area: AreaCode | None = Field(None, description="only residents in this town or village")
    cursor: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500, description="items per page (JSON)")


def resident(row: dict[str, Any]) -> FollowUpResident:
    return FollowUpResident(
        subscriber_id=row["subscriber_id"], name=row["name"], phone=row["phone"], area_code=row["area_code"],
        village=row["village"], village_name=row["village_name"], town_name=row["town_name"],
        reminded_at=row["reminded_at"] if row["reminder_channel"] else None,
        reminder_channel=row["reminder_channel"], deliveries=json.loads(row["states"] or "[]"),
    )


async def all_residents(
    store: Store, notice_id: int, area: str | None, scope: PersonalDataScope | None
) -> list[FollowUpResident]:
    found: list[FollowUpResident] = []
    after = 0
    while True:
        rows = await store.follow_up_rows(notice_id, area, after, PDF_PAGE, scope)
        found += [resident(row) for row in rows]
        if len(rows) < PDF_PAGE:
            return found
        after = rows[-1]["subscriber_id"]


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), undefined=StrictUndefined,
                       autoescape=select_autoescape(["html", "j2"]))


def render_follow_up_html(notice_id: int, title: str, department_name: str, generated_at: str,
                          residents: list[FollowUpResident]) -> str:
    villages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    names: dict[str, tuple[str | None, str | None]] = {}
    for person in residents:
        reminder = f"{person.reminder_channel}" if person.reminder_channel else "无"
        villages[person.village].append({**person.model_dump(), "reminder": reminder})
        names[person.village] = (person.village_name, person.town_name)
    heading = f"《{title}》未确认名单".replace("\\", "").replace('"', "")
    return _environment().get_template("list.html.j2").render(
        title=f"未确认名单 {notice_id}", heading_css=heading, notice_id=notice_id, notice_title=title,
        department_name=department_name, generated_at=generated_at,
        villages=[{"code": code, "name": names[code][0], "town_name": names[code][1], "residents": people}
                  for code, people in sorted(villages.items())],
    )


async def follow_up_pdf(store: Store, settings: Settings, notice: Notice, residents: list[FollowUpResident]) -> bytes:
    """The printable list (one section per village), laid out in a worker thread."""
    department = await store.get_department(notice.department)
    zone = ZoneInfo(settings.server.timezone)
    html = render_follow_up_html(notice.id, notice.title, department.name,
                                 datetime.now(zone).strftime("%Y-%m-%d %H:%M"), residents)  # fmt: skip
    return await asyncio.to_thread(html_to_pdf, html)


async def follow_up(request: web.Request) -> web.StreamResponse:
    key = await require(request)
    store = request.app[STORE]
    notice = await notice_for_key(store, key, path_int(request, "id"))
    q = read_query(request, FollowUpQuery)
    if notice.confirmation is None:
        raise Conflict(f"notice {notice.id} asks for no confirmation, so it has no follow-up list")
    scope = await personal_data_scope(store, key)
    wants_pdf = PDF_MEDIA in request.headers.get("Accept", "")
    if wants_pdf:
        residents = await all_residents(store, notice.id, q.area, scope)
        await store.audit(actor(key), "notice.follow_up", "notice", notice.id,
                          {"area": q.area, "format": "pdf", "residents": len(residents)})
        pdf = await follow_up_pdf(store, request.app[SETTINGS], notice, residents)
        return web.Response(body=pdf, content_type=PDF_MEDIA, headers={
            "Content-Disposition": f'attachment; filename="follow-up-{notice.id}.pdf"', "Cache-Control": "no-store"})
    rows = await store.follow_up_rows(notice.id, q.area, decode_cursor(q.cursor) or 0, q.limit + 1, scope)
    items, next_cursor = page(rows, q.limit, key="subscriber_id")
    await store.audit(actor(key), "notice.follow_up", "notice", notice.id,
                      {"area": q.area, "format": "json", "residents": len(items)})
    return page_response([resident(row) for row in items], next_cursor)


ROUTES = [
    Route(
        "GET", "/api/v1/notices/{id}/follow-up", follow_up,
        "Residents who have not confirmed a notice asking for confirmation, for the village committee to visit "
        "(JSON, or a PDF per village with Accept: application/pdf)",
        "notices", query=FollowUpQuery, response=FollowUpResident, response_list=True,
        success_media={PDF_MEDIA: {"type": "string", "format": "binary"}},
        extra_responses={409: "the notice asks for no confirmation"},
    ),
]
