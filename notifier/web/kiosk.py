"""Kiosks (电子触摸屏) in service halls: the active notices and alerts of an area, in large type, by touch.

    GET /kiosk?area=CODE          the page: every published public notice not expired that is addressed to the
                                  area, to an area above it (its town, the county) or to the whole county,
                                  most severe first; a tap on a notice opens or closes its text
    GET /kiosk/events?area=CODE   with ``Accept: text/event-stream`` (what EventSource sends): server-sent
                                  events; an ``notices`` event carrying the list (JSON) at once and again
                                  whenever it changes (checked every POLL_SECONDS), a comment every
                                  KEEPALIVE_SECONDS, and the stream closes after STREAM_SECONDS with a
                                  ``retry`` so the browser reconnects; at most STREAMS_PER_CLIENT open
                                  from one client address (429 beyond). Without that Accept, the list once
                                  as JSON (``{"items": [...]}``).

The page's script is ``/public/assets/kiosk.js`` (no inline script: the CSP allows the service's own
files only); without it the page still shows every notice, open. A notice leaves a kiosk when it expires,
when it is cancelled (a CAP Cancel included) and when a published update replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from notifier.api.keys import STORE
from notifier.api.problems import problem
from notifier.api.routing import Answer, Route, read_query
from notifier.domain.errors import NotFound
from notifier.domain.models import AreaCode
from notifier.engine.render_threads import RenderThreadsBusy
from notifier.store import Store
from notifier.web.client_address import request_client
from notifier.web.public_pages import HEADERS, HTML, PublicNotice, busy_page, names, public_notices, render

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 300.0
STREAMS_PER_CLIENT = 20  # a service hall's kiosks behind one address; past it a stream is refused (429)
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


@busy_page
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


@dataclass
class AreaList:
    """The active notices of one area as its streams send them: the latest list (JSON), ``changed`` set and
    replaced whenever it changes, and how many streams listen."""

    payload: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0
    task: asyncio.Task[None] | None = None

    def publish(self, payload: str) -> None:
        if payload != self.payload:
            self.payload = payload
            self.changed.set()  # wakes the streams waiting on this event; later ones wait on the next
            self.changed = asyncio.Event()

    async def after(self, sent: str | None, seconds: float) -> str | None:
        """The list once it differs from ``sent`` (at once if it already does); None after ``seconds``."""
        if self.payload is not None and self.payload != sent:
            return self.payload
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self.changed.wait()
        return self.payload if self.payload is not None and self.payload != sent else None


class KioskLists:
    """One reader per area that some kiosk streams: every POLL_SECONDS it reads the area's list for all of them.
    Each stream read it on its own until 2026-12-02, so a hundred streams opened on one area (no login needed)
    made a hundred reads a second of the database; now the reads a second are at most the areas streamed."""

    def __init__(self) -> None:
        self.areas: dict[str, AreaList] = {}
        self.streams: dict[str, int] = {}  # open streams by client (``request_client``)

    def listen(self, store: Store, area: str) -> AreaList:
        entry = self.areas.setdefault(area, AreaList())
        entry.listeners += 1
        if entry.task is None:  # a context of its own: it renders for every stream, not the first one's request
            reader = self._read(store, area, entry)
            entry.task = asyncio.create_task(reader, name=f"kiosk list {area}", context=contextvars.Context())
        return entry

    def leave(self, area: str, entry: AreaList) -> None:
        entry.listeners -= 1
        if entry.listeners == 0:
            if entry.task is not None:
                entry.task.cancel()
            if self.areas.get(area) is entry:
                del self.areas[area]

    async def close(self) -> None:
        tasks = [entry.task for entry in self.areas.values() if entry.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.areas.clear()

    @staticmethod
    async def _read(store: Store, area: str, entry: AreaList) -> None:
        while True:
            try:
                entry.publish(_payload(await _active(store, area)))
            except RenderThreadsBusy:  # anonymous pages hold the render threads' share: the streams keep the list
                pass
            except Exception:  # the database refused for a moment: the streams keep the last list
                log.warning("kiosk list of area %s could not be read; trying again", area, exc_info=True)
            await asyncio.sleep(POLL_SECONDS)  # the notices live in the database, which any process may change


KIOSK_LISTS = web.AppKey("kiosk_lists", KioskLists)


async def lists_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's ``KioskLists``; their readers stop at cleanup (place it after the database's context)."""
    app[KIOSK_LISTS] = KioskLists()
    yield
    await app[KIOSK_LISTS].close()


async def kiosk_events(request: web.Request) -> web.StreamResponse:
    query = read_query(request, KioskQuery)
    store = request.app[STORE]
    await _area_name(store, query.area)
    if EVENT_STREAM not in request.headers.get("Accept", ""):
        body = '{"items":' + _payload(await _active(store, query.area)) + "}"
        return web.Response(text=body, content_type="application/json", charset="utf-8", headers=HEADERS)
    lists = request.app[KIOSK_LISTS]
    client = request_client(request)
    if lists.streams.get(client, 0) >= STREAMS_PER_CLIENT:
        # each stream holds a connection for minutes: one client opening them without end would take every
        # file descriptor of the process, and the API and pages with them
        detail = f"{STREAMS_PER_CLIENT} kiosk streams are open from this address; close one or try again later"
        return problem(429, "Too many streams", detail, slug="too-many-streams", instance=request.path,
                       headers={"Retry-After": str(int(STREAM_SECONDS))})  # fmt: skip
    lists.streams[client] = lists.streams.get(client, 0) + 1
    try:
        response = web.StreamResponse(
            headers={**HEADERS, "Content-Type": EVENT_STREAM, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        entry = lists.listen(store, query.area)
        try:
            await _stream(response, entry)
        except ConnectionResetError:
            pass  # the kiosk went away
        finally:
            lists.leave(query.area, entry)
        return response
    finally:
        lists.streams[client] -= 1
        if not lists.streams[client]:
            del lists.streams[client]


async def _stream(response: web.StreamResponse, entry: AreaList) -> None:
    await response.write(f"retry: {int(POLL_SECONDS * 2000)}\n\n".encode())
    loop = asyncio.get_running_loop()
    ends = last_write = loop.time()
    ends += STREAM_SECONDS
    sent: str | None = None
    while (now := loop.time()) < ends:
        payload = await entry.after(sent, min(ends - now, last_write + KEEPALIVE_SECONDS - now))
        if payload is not None:
            await response.write(f"event: notices\ndata: {payload}\n\n".encode())
            sent, last_write = payload, loop.time()
        elif loop.time() - last_write >= KEEPALIVE_SECONDS:
            await response.write(b": still here\n\n")
            last_write = loop.time()


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
        extra_responses={404: "no such area", 429: "too many streams open from this address"},
    ),
]
