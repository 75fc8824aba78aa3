"""The public page of a publicity list (公示): ``GET /public/notices/{id}`` while its period lasts.

Shown (200, no login) from the first day of the period to the last, in the server's timezone, once the
notice is approved: its title and text (mobile and identity card numbers masked, as on every public page:
``public_pages.mask_personal``), the period, the complaint phone and the whole table, masked
(``engine.publicity``), and the link to the notice's feedback form (``feedback_form``) once it went out.
Before the period, or for a notice that is not an approved publicity notice: 404.
After the last day: 410 Gone, and the withdrawal is logged once (audit ``publicity.withdrawn``; housekeeping
logs it too when nobody asks for the page).

The public notices column of issue 11 serves other notices at the same address; this module answers only
for publicity notices, and ``publicity_page`` is what that page calls for one.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from channels.bulletin_render import chinese_day, paragraphs
from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Answer, Route, path_int
from notifier.domain.errors import NotFound
from notifier.domain.models import Notice
from notifier.engine.publicity import publicity_table
from notifier.web.feedback_form import action_path, takes_feedback
from notifier.web.pages import message, render
from notifier.web.public_pages import mask_personal

SHOWN_STATES = frozenset({"approved", "scheduled", "sending", "done"})
ACTOR = "page:publicity"


def today(request: web.Request) -> str:
    return datetime.now(ZoneInfo(request.app[SETTINGS].server.timezone)).date().isoformat()


async def publicity_page(request: web.Request, notice: Notice) -> web.Response:
    """The page of an approved publicity notice: 200 within its period, 410 after it, 404 before it."""
    assert notice.publicity is not None
    store = request.app[STORE]
    day = today(request)
    period = notice.publicity
    if day > period.until.isoformat():
        await store.withdraw_ended_publicity(day, ACTOR)
        return message(
            request, 410, ("公示已结束", "Publicity period ended"),
            [(f"本公示期已于{chinese_day(period.until.isoformat())}结束，名单已撤下。",
              "The publicity period has ended and the list was withdrawn.")],
        )  # fmt: skip
    if day < period.from_date.isoformat():
        raise NotFound(f"no public notice {notice.id}")
    table = await publicity_table(store, period, None)
    department = await store.get_department(notice.department)
    masked_title = mask_personal(notice.title)
    return render(
        request,
        "publicity.html.j2",
        title=(masked_title, masked_title),
        masked_title=masked_title,
        department_name=department.name,
        paragraphs=paragraphs(mask_personal(notice.body or "")),
        period_from=chinese_day(period.from_date.isoformat()),
        period_until=chinese_day(period.until.isoformat()),
        table=table,
        feedback_link=action_path(notice.id) if takes_feedback(notice) else None,
    )


async def public_notice(request: web.Request) -> web.Response:
    notice_id = path_int(request, "id")
    try:
        notice = await request.app[STORE].get_notice(notice_id)
    except NotFound:
        notice = None
    if notice is None or notice.publicity is None or notice.state.value not in SHOWN_STATES:
        raise NotFound(f"no public notice {notice_id}")
    return await publicity_page(request, notice)


_PAGE = Answer("an HTML page", "text/html", {"type": "string"})
ROUTES = [
    Route(
        "GET",
        "/public/notices/{id}",
        public_notice,
        "A publicity list (公示) while its period lasts; 410 Gone after it",
        "public",
        public=True,
        success=_PAGE,
        extra_responses={410: Answer("the period has ended: the list is withdrawn", "text/html", {"type": "string"})},
    ),
]
