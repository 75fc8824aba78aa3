"""The public Atom feeds (RFC 4287) of published notices.

    GET /feeds/notices.atom[?domain=CODE]   the 50 latest published notices (the portal column), each linking
                                            to its page /public/notices/{id}, its domain as category
    GET /feeds/cap.atom                     the 50 latest published alerts (public notices of severity minor or
                                            above, and those made from CAP alerts), each linking to its CAP
                                            1.2 document /public/notices/{id}/cap.xml, as CAP feeds do

Ids and links are absolute, built on ``[server] public_url``. Written with ElementTree, so every text is
escaped, and cut to the characters XML 1.0 can hold (``cap.document.xml_safe``); the texts are the public
view of the notice (``notifier.web.public_pages``), personal data masked.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Answer, Route, read_query
from notifier.cap.document import MEDIA_TYPE, xml_safe
from notifier.domain.disclosure import DisclosureDomain
from notifier.store.public import PublicFilter
from notifier.web.public_pages import PublicNotice, names, public_notices

ATOM = "http://www.w3.org/2005/Atom"
ATOM_MEDIA = "application/atom+xml"
FEED_SIZE = 50
SUMMARY_CHARS = 300


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: DisclosureDomain | None = None


def _add(parent: ET.Element, name: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, name, attributes)
    if text is not None:
        element.text = text
    return element


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _feed(base: str, path: str, title: str, author: str, notices: list[PublicNotice], cap: bool) -> bytes:
    # unqualified names under an xmlns attribute: ElementTree's default_namespace refuses unqualified attributes
    feed = ET.Element("feed", {"xmlns": ATOM, "{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    _add(feed, "id", f"{base}{path}")
    _add(feed, "title", title)
    newest = max((notice.published_at for notice in notices), default=datetime(2026, 1, 1, tzinfo=UTC))
    _add(feed, "updated", _stamp(newest))
    _add(feed, "link", rel="self", type=ATOM_MEDIA, href=f"{base}{path}")
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}/public/notices")
    _add(_add(feed, "author"), "name", author)
    for notice in notices:
        page = f"{base}/public/notices/{notice.id}"
        entry = _add(feed, "entry")
        _add(entry, "id", f"{page}/cap.xml" if cap else page)
        _add(entry, "title", notice.title)
        _add(entry, "updated", _stamp(notice.published_at))
        _add(entry, "published", _stamp(notice.published_at))
        if cap:
            _add(entry, "link", rel="alternate", type=MEDIA_TYPE, href=f"{page}/cap.xml")
            _add(entry, "link", rel="related", type="text/html", href=page)
        else:
            _add(entry, "link", rel="alternate", type="text/html", href=page)
        _add(_add(entry, "author"), "name", notice.department_name)
        if notice.domain and notice.domain_name:
            _add(entry, "category", term=notice.domain, label=notice.domain_name)
        _add(entry, "category", term=notice.severity, label=notice.severity_name)
        summary = notice.text if len(notice.text) <= SUMMARY_CHARS else notice.text[:SUMMARY_CHARS] + "…"
        _add(entry, "summary", summary, type="text")
    ET.indent(feed)
    body: bytes = ET.tostring(xml_safe(feed), encoding="utf-8", xml_declaration=True)
    return body


async def _respond(request: web.Request, path: str, title: str, notices: list[PublicNotice], cap: bool) -> web.Response:
    store = request.app[STORE]
    county = next((area.name for area in await store.list_areas() if area.level == "county"), "")
    base = request.app[SETTINGS].server.public_url.rstrip("/")
    body = _feed(base, path, f"{county}{title}", f"{county}人民政府", notices, cap)
    return web.Response(body=body, content_type=ATOM_MEDIA, charset="utf-8", headers={"Cache-Control": "max-age=60"})


async def notices_feed(request: web.Request) -> web.Response:
    query = read_query(request, FeedQuery)
    store = request.app[STORE]
    found = await store.list_published(
        PublicFilter(domain=query.domain.value if query.domain else None), limit=FEED_SIZE
    )
    known = await names(store)
    return await _respond(
        request, "/feeds/notices.atom", " 政务公开 · 公示公告", await public_notices(store, found, known), False
    )


async def cap_feed(request: web.Request) -> web.Response:
    store = request.app[STORE]
    found = await store.list_published(PublicFilter(alerts=True), limit=FEED_SIZE)  # one read, whatever the archive
    alerts = await public_notices(store, found, await names(store))
    return await _respond(request, "/feeds/cap.atom", " 预警信息 (CAP)", alerts, True)


_FEED = Answer("an Atom 1.0 feed", ATOM_MEDIA, {"type": "string"})
ROUTES = [
    Route(
        "GET",
        "/feeds/notices.atom",
        notices_feed,
        "Atom feed of the latest published notices (the portal column)",
        "public",
        public=True,
        query=FeedQuery,
        success=_FEED,
    ),
    Route(
        "GET",
        "/feeds/cap.atom",
        cap_feed,
        "Atom feed of the latest published alerts, each linking to its CAP 1.2 document",
        "public",
        public=True,
        success=_FEED,
    ),
]
