"""The follow-up list in the console: residents who have not confirmed a notice that asks for confirmation,
per village, for the village committee to visit or call.

    GET /console/notices/{id}/unconfirmed       per village (town and village as heading): name, address area,
                                                phone, the reminder sent and the state of each message;
                                                ``?area=`` narrows it to a town or village
    GET /console/notices/{id}/unconfirmed.pdf   the same list as the printable PDF of
                                                ``GET /api/v1/notices/{id}/follow-up`` (Accept: application/pdf)

The notice's department's staff only (others: 404), and of its residents those the staff member's department
reads, as the API. The list holds names and phone numbers: each
view and each download is audited as ``notice.follow_up`` (the filter, the format and the count, never who),
the entry the API writes. The page shows at most ``PAGE_LIMIT`` residents and says so; the PDF has them all.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import web

from notifier.api.follow_up import all_residents, follow_up_pdf, resident
from notifier.api.keys import SETTINGS
from notifier.api.routing import path_int
from notifier.console.compose_form import area_tree
from notifier.console.framework import Console, page
from notifier.domain.errors import Conflict
from notifier.domain.feedback import FollowUpResident
from notifier.domain.models import Notice
from notifier.domain.text import ascii_digits
from notifier.policy import notice_for_key, personal_data_scope

PAGE_LIMIT = 1000
AREA_CHARS = (6, 9, 12)  # county, town, village codes


async def _notice(console: Console) -> Notice:
    notice = await notice_for_key(console.store, console.staff.as_key(), path_int(console.request, "id"))
    if notice.confirmation is None:
        raise Conflict(
            console.t(
                f"通知 {notice.id} 未要求确认，没有未确认名单",
                f"Notice {notice.id} asks for no confirmation, so it has no follow-up list",
            )
        )
    return notice


def _area(console: Console) -> str | None:
    area = str(console.request.query.get("area", "")).strip()
    return area if ascii_digits(area) and len(area) in AREA_CHARS else None


def _villages(residents: list[FollowUpResident]) -> list[dict[str, Any]]:
    villages: dict[str, list[FollowUpResident]] = defaultdict(list)
    for person in residents:
        villages[person.village].append(person)
    return [{"code": code, "name": people[0].village_name, "town_name": people[0].town_name, "residents": people}
            for code, people in sorted(villages.items())]  # fmt: skip


@page()
async def unconfirmed(request: web.Request, console: Console) -> web.StreamResponse:
    notice = await _notice(console)
    area = _area(console)
    scope = await personal_data_scope(console.store, console.staff.as_key())
    rows = await console.store.follow_up_rows(notice.id, area, 0, PAGE_LIMIT + 1, scope)
    residents = [resident(row) for row in rows[:PAGE_LIMIT]]
    await console.store.audit(console.staff.actor, "notice.follow_up", "notice", notice.id,
                              {"area": area, "format": "console", "residents": len(residents)})  # fmt: skip
    counts = await console.store.confirmation_counts(notice.id)
    return console.render(
        "unconfirmed.html", notice=notice, area=area or "", villages=_villages(residents), total=len(residents),
        more=len(rows) > PAGE_LIMIT, limit=PAGE_LIMIT, counts=counts,
        towns=area_tree(await console.store.list_areas()),
    )  # fmt: skip


@page(same_origin=True)
async def unconfirmed_pdf(request: web.Request, console: Console) -> web.StreamResponse:
    notice = await _notice(console)
    area = _area(console)
    scope = await personal_data_scope(console.store, console.staff.as_key())
    residents = await all_residents(console.store, notice.id, area, scope)
    await console.store.audit(console.staff.actor, "notice.follow_up", "notice", notice.id,
                              {"area": area, "format": "pdf", "residents": len(residents)})  # fmt: skip
    pdf = await follow_up_pdf(console.store, request.app[SETTINGS], notice, residents)
    headers = {"Content-Disposition": f'attachment; filename="follow-up-{notice.id}.pdf"'}
    return web.Response(body=pdf, content_type="application/pdf", headers=headers)


ROUTES = [
    ("GET", "/console/notices/{id}/unconfirmed", unconfirmed),
    ("GET", "/console/notices/{id}/unconfirmed.pdf", unconfirmed_pdf),
]
