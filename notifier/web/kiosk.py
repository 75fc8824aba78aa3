"""Kiosks (电子触摸屏) in service halls: the active notices and alerts of an area, in large type, by touch.

    GET /kiosk?area=CODE          the page: every published public notice not expired that is addressed to the
                                  area, to an area above it (its town, the county) or to the whole county,
                                  most severe first; a tap on a notice opens or closes its text
    GET /kiosk/events?area=CODE   with ``Accept: text/event-stream`` (what EventSource sends): server-sent
                                  events; an ``notices`` event carrying the list (JSON) at once and again
                                  whenever it changes (checked every POLL_SECONDS), a comment every
                                  KEEPALIVE_SECONDS, and the stream closes after STREAM_SECONDS with a
                                  ``retry`` so the browser reconnects. Without that Accept, the list once
                                  as JSON (``{"items": [...]}``).

The page's script is ``/public/assets/kiosk.js`` (no inline script: the CSP allows the service's own
files only); without it the page still shows every notice, open. A notice leaves a kiosk when it expires,
when it is cancelled (a CAP Cancel included) and when a published update replaces it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from notifier.api.keys import STORE
from notifier.api.routing import Answer, Route, read_query
from notifier.domain.errors import NotFound
from notifier.domain.models import AreaCode
from notifier.store import Store
from notifier.web.public_pages import HEADERS, HTML, PublicNotice, names, public_notices, render

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 300.0
EVENT_STREAM = "text/event-stream"


class KioskQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    area: AreaCode


async def _active(store: Store, area: str) -> list[PublicNotice]:
    known = await names(store)
    return await public_notices(store, await store.active_public_notices(area), known)


async def _area_name(store: Store, area: str) -> str:
    try:
        await store.get_area(area)
    except NotFound:
        raise web.HTTPNotFound(text=f"no area {area}") from None
    return (await store.printable_area_names()).get(area, area)


async def kiosk_page(request: web.Request) -> web.Response:
    query = read_query(request, KioskQuery)
    store = request.app[STORE]
    try:
        area_name = await _area_name(store, query.area)
    except web.HTTPNotFound:
        return render("message.html.j2", 404, title="没有这个地区", lines=[f"地区代码 {query.area} 不存在。"])
    return render(
        "kiosk.html.j2",
        title=f"{area_name} 公告与预警",
        area=query.area,
        area_name=area_name,
        notices=await _active(store, query.area),
    )


def _payload(notices: list[PublicNotice]) -> str:
    return json.dumps([notice.as_json() for notice in notices], ensure_ascii=False, separators=(",", ":"))


async def kiosk_events(request: web.Request) -> web.StreamResponse:
    query = read_query(request, KioskQuery)
    store = request.app[STORE]
    await _area_name(store, query.area)
    if EVENT_STREAM not in request.headers.get("Accept", ""):
        body = '{"items":' + _payload(await _active(store, query.area)) + "}"
        return web.Response(text=body, content_type="application/json", charset="utf-8", headers=HEADERS)
    response = web.StreamResponse(
        headers={**HEADERS, "Content-Type": EVENT_STREAM, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        await _stream(response, store, query.area)
    except ConnectionResetError:
        pass  # the kiosk went away
    return response


async def _stream(response: web.StreamResponse, store: Store, area: str) -> None:
    await response.write(f"retry: {int(POLL_SECONDS * 2000)}\n\n".encode())
    started = last_write = time.monotonic()
    sent: str | None = None
    while time.monotonic() - started < STREAM_SECONDS:
        payload = _payload(await _active(store, area))
        if payload != sent:
            await response.write(f"event: notices\ndata: {payload}\n\n".encode())
            sent, last_write = payload, time.monotonic()
        elif time.monotonic() - last_write > KEEPALIVE_SECONDS:
            await response.write(b": still here\n\n")
            last_write = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)  # the notices live in the database, which any process may change


_ITEMS: dict[str, Any] = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "object"}}},
    "required": ["items"],
}
ROUTES = [
    Route(
        "GET",
        "/kiosk",
        kiosk_page,
        "A service hall's touch screen: the active notices and alerts of an area, large type (HTML)",
        "public",
        public=True,
        query=KioskQuery,
        success=HTML,
        extra_responses={404: Answer("no such area", "text/html", {"type": "string"})},
    ),
    Route(
        "GET",
        "/kiosk/events",
        kiosk_events,
        "The kiosk's notices: server-sent events with Accept: text/event-stream, else the list once as JSON",
        "public",
        public=True,
        query=KioskQuery,
        # the event stream (Accept: text/event-stream) is not listed as a media type of the answer: a client
        # that reads the document to call every operation would wait on a stream that lasts minutes
        success=Answer(
            "the active notices of the area (with Accept: text/event-stream, a stream of notices events)",
            "application/json",
            _ITEMS,
        ),
        extra_responses={404: "no such area"},
    ),
]
