"""What the public pages share: their templates (``templates/public``), headers, style sheet and script, and
the public view of a notice.

The public view carries only what a notice says to everyone: title, text, interpretation, department,
domain, severity, the names of the areas it is addressed to and when it was published. Never its target
groups, residents, deliveries or data; and the texts pass through ``mask_personal`` first, which masks what
looks like a mainland mobile number (138****0000) or a resident identity card number (370725********1234),
in case a department pasted one into a public text.

Pages take no inline script or style: the Content-Security-Policy allows scripts, styles and connections
from the service only. They may be framed by any site (the government portal embeds the column): they
carry no form that changes anything.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from notifier.api.routing import Answer, Route
from notifier.domain.disclosure import DOMAIN_NAMES
from notifier.domain.enums import Severity
from notifier.domain.masking import mask_numbers_in_text
from notifier.domain.models import Notice
from notifier.domain.templates import TemplateVersion
from notifier.engine.render import RenderBudgetSpent, Renderer, RenderError
from notifier.engine.render_threads import RenderThreadsBusy, rendered, rendered_for_public
from notifier.store import Store
from notifier.store.public import PublishedNotice
from notifier.web.page_environment import page_environment

CHINA_TIME = timezone(timedelta(hours=8))
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "public"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors *"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSETS = {"public.css": "text/css", "kiosk.js": "text/javascript"}
SEVERITY_NAMES = {
    Severity.INFO: "通知",
    Severity.MINOR: "提示",
    Severity.MODERATE: "预警",
    Severity.SEVERE: "严重预警",
    Severity.EXTREME: "紧急预警",
}


def mask_personal(text: str) -> str:
    """Mask mainland mobile numbers (first 3 and last 4 digits kept) and identity card numbers (first 6 and
    last 4 kept), as a publicity list's free text is masked (``domain.masking.mask_numbers_in_text``): also
    when written with +86, spaces or hyphens, or in full-width digits; another country's number in
    international form too."""
    return mask_numbers_in_text(text)


def render(template: str, status: int = 200, **context: Any) -> web.Response:
    text = page_environment(TEMPLATE_DIR).get_template(template).render(china=CHINA_TIME, **context)
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8", headers=HEADERS)


Page = Callable[[web.Request], Awaitable[web.Response]]


def busy_page(handler: Page) -> Page:
    """An HTML page for people: while the render threads' public share is taken (``RenderThreadsBusy``), a page
    saying to reload shortly (503 with Retry-After), not the API's problem document."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except RenderThreadsBusy as exc:
            lines = [
                f"此刻访问的人较多，请 {exc.retry_after} 秒后刷新本页。",
                f"Many people are reading the notices right now: reload in {exc.retry_after} seconds.",
            ]
            response = render("message.html.j2", 503, title="页面繁忙 · Busy", lines=lines)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response

    return answer


@dataclass(frozen=True)
class PublicNotice:
    """A published notice as the public sees it."""

    id: int
    title: str
    text: str
    interpretation: str | None
    department: str
    department_name: str
    domain: str | None
    domain_name: str | None
    severity: str
    severity_name: str
    areas: list[str]
    published_at: datetime
    expires_at: datetime | None
    from_cap: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "department": self.department_name,
            "severity": self.severity,
            "severity_name": self.severity_name,
            "areas": self.areas,
            "published_at": self.published_at.isoformat(),
        }


@dataclass(frozen=True)
class Names:
    departments: dict[str, str]
    areas: dict[str, str]


async def names(store: Store) -> Names:
    departments = {department.code: department.name for department in await store.list_departments()}
    return Names(departments, await store.printable_area_names())


_RENDERER = Renderer()
_TEXTS: OrderedDict[str, str] = OrderedDict()  # the last public texts rendered, by all the rendering reads
TEXTS_KEPT = 1024
_RENDERING: dict[tuple[str, bool], asyncio.Future[str]] = {}  # texts being rendered (see _rendering)


async def public_text(store: Store, notice: Notice, known: Names, *, anonymous: bool) -> str:
    """The text a notice shows to the public: its body, or for a notice written from a template that template's
    public text (the ``feed`` kind: its ``feed`` slot, else its ``default`` one) rendered with the notice's data in
    the template's version the notice was checked against; the title alone when there is no such text (a roster
    notice, whose text carries each recipient's cells, is never rendered here).

    A rendered text is kept (the last ``TEXTS_KEPT``) by a hash of its template version's texts and its context:
    the anonymous pages, feeds and kiosks show the same notices to every visitor, every second on a kiosk, and
    would otherwise run the template again for each. Requests for a text being rendered await that one rendering
    (a burst of visitors to a new notice costs one). It renders in a render thread, within the request's budget
    (``template_sandbox.RenderBudget``): past it, the title alone. For an ``anonymous`` caller it takes a place
    of the public share of the threads (``render_threads.rendered_for_public``): ``RenderThreadsBusy`` when
    there is none."""
    if notice.body or not notice.template or notice.target.roster is not None:
        return notice.body or notice.title
    version = await store.template_version(notice.template, notice.template_version)
    if version is None:
        return notice.title
    department_name = known.departments.get(notice.department, notice.department)
    context = _RENDERER.context(notice.model_dump(mode="json"), department_name)
    read = json.dumps([version.name, version.version, version.texts, context], sort_keys=True, default=str)
    key = hashlib.sha256(read.encode()).hexdigest()
    if key in _TEXTS:
        _TEXTS.move_to_end(key)
        return _TEXTS[key]
    try:
        return await asyncio.shield(_rendering(key, anonymous, version, notice.title, context))
    except RenderBudgetSpent:  # the request that rendered had rendered enough: the title, and no keeping
        return notice.title


def _rendering(
    key: str, anonymous: bool, version: TemplateVersion, title: str, context: dict[str, Any]
) -> asyncio.Future[str]:
    """The one rendering of a text not kept yet that every request for it awaits (by the text's key, and whether
    anonymous: a signed-in caller is never refused a place of the public share on an anonymous one's behalf). It
    runs as a task of its own, so a caller who goes away stops no other; its error reaches every caller and is not
    kept; it is forgotten once done."""
    flight = (key, anonymous)
    pending = _RENDERING.get(flight)
    if pending is not None and pending.get_loop() is asyncio.get_running_loop():
        return pending
    task = asyncio.ensure_future(_render_and_keep(key, anonymous, version, title, context))
    _RENDERING[flight] = task

    def forget(done: asyncio.Future[str]) -> None:
        if _RENDERING.get(flight) is done:
            del _RENDERING[flight]
        if not done.cancelled():
            done.exception()  # seen: the callers that awaited it got it, and none may be left

    task.add_done_callback(forget)
    return task


async def _render_and_keep(
    key: str, anonymous: bool, version: TemplateVersion, title: str, context: dict[str, Any]
) -> str:
    render = rendered_for_public if anonymous else rendered
    text = await render(_rendered_text, version, title, context)
    _TEXTS[key] = text
    while len(_TEXTS) > TEXTS_KEPT:
        _TEXTS.popitem(last=False)
    return text


def _rendered_text(version: TemplateVersion, title: str, context: dict[str, Any]) -> str:
    try:
        text = str(_RENDERER.render(version, "feed", context)["text"] or "")
    except RenderError:
        return title
    lines = text.strip().splitlines()
    if lines and lines[0].strip() == title.strip():  # the page shows the title above the text
        lines = lines[1:]
    return "\n".join(lines).strip() or title


async def public_notices(store: Store, items: list[PublishedNotice], known: Names) -> list[PublicNotice]:
    """The anonymous pages' view of ``items``."""
    return [public_notice(item, known, await public_text(store, item.notice, known, anonymous=True)) for item in items]


def public_notice(published: PublishedNotice, known: Names, text: str | None = None) -> PublicNotice:
    """What the public sees of a published notice (personal data masked); ``text`` from :func:`public_text`."""
    notice = published.notice
    county = "全县"
    return PublicNotice(
        id=notice.id,
        title=mask_personal(notice.title),
        text=mask_personal(text or notice.body or notice.title),
        interpretation=mask_personal(notice.interpretation) if notice.interpretation else None,
        department=notice.department,
        department_name=known.departments.get(notice.department, notice.department),
        domain=notice.domain,
        domain_name=DOMAIN_NAMES.get(notice.domain) if notice.domain else None,
        severity=notice.severity.value,
        severity_name=SEVERITY_NAMES[notice.severity],
        areas=[known.areas.get(code, code) for code in notice.target.areas] or [county],
        published_at=published.published_at,
        expires_at=notice.expires_at,
        from_cap=notice.cap_identifier is not None,
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    media = ASSETS.get(name)
    if media is None:
        raise web.HTTPNotFound(text=f"no asset {name[:50]}")
    body = files("notifier.web").joinpath("assets", name).read_bytes()
    return web.Response(
        body=body,
        content_type=media,
        charset="utf-8",
        headers={**HEADERS, "Cache-Control": "public, max-age=300"},
    )


HTML = Answer("an HTML page", "text/html", {"type": "string"})
ROUTES = [
    Route(
        "GET",
        "/public/assets/{name}",
        asset,
        "The public pages' style sheet (public.css) and the kiosk's script (kiosk.js)",
        "public",
        public=True,
        path_params={"name": {"type": "string", "enum": sorted(ASSETS)}},
        success=Answer("the file", "text/css", {"type": "string"}),
        success_media={"text/javascript": {"type": "string"}},
        extra_responses={404: "no such file"},
    ),
]
