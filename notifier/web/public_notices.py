"""The portal column: published notices by domain, department, area and date (HTML, embeddable).

    GET /public/notices?domain=&department=&area=&from=&to=&page=   the list, 20 a page, newest first
    GET /public/notices/{id}                                       one notice: its text, and beside it the
                                                                   plain-language interpretation (政策解读)
    GET /public/notices/{id}/cap.xml                               the notice as a CAP 1.2 alert, its texts
                                                                   masked as the page's are

``?embed=1`` leaves out the page's own header and footer, for a frame in the government portal. A notice
that is not published (not public, not yet approved, cancelled, or unknown) is a 404 page. Other modules
add sections to a notice's page through ``NOTICE_SECTIONS``: each is called with the request and the
notice and returns the HTML of a section (or None); the page shows them below the text, in order.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, field_validator

from notifier.api.cap import notice_alert
from notifier.api.keys import STORE
from notifier.api.routing import Answer, Route, path_int, read_query
from notifier.cap.document import MEDIA_TYPE, CapAlert, write_alert
from notifier.domain.disclosure import DOMAINS, DisclosureDomain
from notifier.domain.errors import NotFound
from notifier.domain.models import AreaCode, Code, Notice
from notifier.store.public import PublicFilter, PublishedNotice
from notifier.web.feedback_form import action_path, takes_feedback
from notifier.web.public_pages import (
    HTML,
    PublicNotice,
    busy_page,
    mask_personal,
    names,
    public_notice,
    public_notices,
    public_text,
    render,
)
from notifier.web.publicity import SHOWN_STATES, publicity_page

PAGE_SIZE = 20
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CHINA_TIME = timedelta(hours=8)
FIRST_DAY, LAST_DAY = date.min + timedelta(days=1), date.max - timedelta(days=1)
Section = Callable[[web.Request, Notice], Awaitable[Markup | None]]
NOTICE_SECTIONS: list[Section] = []  # extended at import time by the modules that add a section


class PublicSearchQuery(BaseModel):
    """The search form; an empty field means no filter."""

    model_config = ConfigDict(extra="forbid")

    # the form sends an empty value for "all": "" is a value of each filter, meaning no filter
    domain: DisclosureDomain | Literal[""] | None = None
    department: Code | Literal[""] | None = None
    area: AreaCode | Literal[""] | None = None
    from_: date | Literal[""] | None = Field(
        None, alias="from", description="published on or after this day (China time)"
    )
    to: date | Literal[""] | None = Field(None, description="published on or before this day (China time)")
    page: Annotated[int, Field(ge=1, le=1000)] = 1
    embed: bool = False

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if value not in (None, "") and not (isinstance(value, str) and _DAY.fullmatch(value)):
            raise ValueError("a day as YYYY-MM-DD")
        return value

    @field_validator("from_", "to")
    @classmethod
    def _in_the_calendar(cls, value: date | str | None) -> date | str | None:
        # the filter runs from the day's start to the next day's, in UTC (8 hours earlier): both must be times
        if isinstance(value, date) and not FIRST_DAY <= value <= LAST_DAY:
            raise ValueError(f"a day from {FIRST_DAY} to {LAST_DAY}")
        return value

    @property
    def domain_code(self) -> str | None:
        return self.domain.value if isinstance(self.domain, DisclosureDomain) else None

    @property
    def from_day(self) -> date | None:
        return self.from_ if isinstance(self.from_, date) else None

    @property
    def to_day(self) -> date | None:
        return self.to if isinstance(self.to, date) else None

    def where(self) -> PublicFilter:
        def start_of(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=UTC) - CHINA_TIME

        return PublicFilter(
            domain=self.domain_code,
            department=self.department or None,
            area=self.area or None,
            published_from=start_of(self.from_day) if self.from_day else None,
            published_before=start_of(self.to_day + timedelta(days=1)) if self.to_day else None,
        )

    def link(self, **change: Any) -> str:
        """The query string of this search with some values changed (page 1 and no filter left out)."""
        values: dict[str, Any] = {
            "domain": self.domain_code,
            "department": self.department or None,
            "area": self.area or None,
            "from": self.from_day.isoformat() if self.from_day else None,
            "to": self.to_day.isoformat() if self.to_day else None,
            "page": self.page,
            "embed": "1" if self.embed else None,
        }
        values.update(change)
        return "?" + urlencode({k: v for k, v in values.items() if v is not None and not (k == "page" and v == 1)})


class PublicNoticeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    embed: bool = False


@busy_page
async def list_page(request: web.Request) -> web.Response:
    query = read_query(request, PublicSearchQuery)
    store = request.app[STORE]
    found = await store.list_published(
        query.where(), limit=PAGE_SIZE + 1, offset=(query.page - 1) * PAGE_SIZE
    )
    known = await names(store)
    notices = await public_notices(store, found[:PAGE_SIZE], known)
    return render(
        "notices.html.j2",
        title="政务公开 · 公示公告",
        query=query,
        notices=notices,
        domains=DOMAINS,
        departments=sorted(known.departments.items(), key=lambda item: item[0]),
        towns=sorted((code, name) for code, name in known.areas.items() if len(code) <= 9),
        next_link=query.link(page=query.page + 1) if len(found) > PAGE_SIZE else None,
        previous_link=query.link(page=query.page - 1) if query.page > 1 else None,
        embed=query.embed,
    )


async def _published_row(request: web.Request) -> PublishedNotice | web.Response:
    """The published notice the path names, else the 404 page."""
    published = await request.app[STORE].get_published(path_int(request, "id"))
    if published is None:
        return render("message.html.j2", 404, title="没有这条公告", lines=["这条公告不存在，或尚未公开、已撤回。"])
    return published


async def _published(request: web.Request) -> tuple[PublicNotice, Notice] | web.Response:
    found = await _published_row(request)
    if isinstance(found, web.Response):
        return found
    store = request.app[STORE]
    known = await names(store)
    return public_notice(found, known, await public_text(store, found.notice, known, anonymous=True)), found.notice


@busy_page
async def notice_page(request: web.Request) -> web.Response:
    query = read_query(request, PublicNoticeQuery)
    try:
        notice = await request.app[STORE].get_notice(path_int(request, "id"))
    except NotFound:
        notice = None
    if notice is not None and notice.publicity is not None and notice.state.value in SHOWN_STATES:
        return await publicity_page(request, notice)  # a publicity list (公示): its own page, 410 after its period
    found = await _published(request)
    if isinstance(found, web.Response):
        return found
    shown, notice = found
    sections = [section for make in NOTICE_SECTIONS if (section := await make(request, notice)) is not None]
    feedback_link = action_path(notice.id) if takes_feedback(notice) else None
    return render("notice.html.j2", title=shown.title, notice=shown, sections=sections, embed=query.embed,
                  feedback_link=feedback_link)


def _masked_text(text: str | None) -> str | None:
    return None if text is None else mask_personal(text)


def public_alert(alert: CapAlert) -> CapAlert:
    """The alert with the personal numbers of its free texts masked, as on the notice's page (``mask_personal``):
    identifiers, times and codes are kept as they are, so that references to the alert still hold."""
    infos = tuple(
        info.model_copy(update={
            **{name: _masked_text(getattr(info, name))
               for name in ("audience", "sender_name", "headline", "description", "instruction", "contact")},
            "parameters": tuple((name, mask_personal(value)) for name, value in info.parameters),
            "resources": tuple(r.model_copy(update={"description": mask_personal(r.description)})
                               for r in info.resources),
            "areas": tuple(a.model_copy(update={"description": mask_personal(a.description)}) for a in info.areas),
        })
        for info in alert.infos
    )  # fmt: skip
    return alert.model_copy(update={"note": _masked_text(alert.note), "infos": infos})


async def notice_cap(request: web.Request) -> web.Response:
    found = await _published_row(request)  # the alert is written from the notice: no page text is needed here
    if isinstance(found, web.Response):
        return found
    alert = public_alert(await notice_alert(request, request.app[STORE], found.notice, anonymous=True))
    return web.Response(body=write_alert(alert), content_type=MEDIA_TYPE, charset="utf-8")


ROUTES = [
    Route(
        "GET",
        "/public/notices",
        list_page,
        "The portal column: published notices by domain, department, area and date, 20 a page (HTML)",
        "public",
        public=True,
        query=PublicSearchQuery,
        success=HTML,
    ),
    Route(
        "GET",
        "/public/notices/{id}",
        notice_page,
        "A published notice with its plain-language interpretation (HTML)",
        "public",
        public=True,
        query=PublicNoticeQuery,
        success=HTML,
        extra_responses={
            404: Answer("no such published notice", "text/html", {"type": "string"}),
            410: Answer("a publicity list whose period has ended: withdrawn", "text/html", {"type": "string"}),
        },
    ),
    Route(
        "GET",
        "/public/notices/{id}/cap.xml",
        notice_cap,
        "A published notice as a CAP 1.2 alert",
        "public",
        public=True,
        success=Answer("a CAP 1.2 alert", MEDIA_TYPE, {"type": "string"}),
        extra_responses={404: Answer("no such published notice", "text/html", {"type": "string"})},
    ),
]
