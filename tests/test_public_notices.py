"""The portal column (/public/notices) and the two public Atom feeds, read by feedparser."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import feedparser
import pytest

from notifier.cap.document import read_alert
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.web import kiosk, public_pages
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_B1, Api
from tests.databases import run_sql

ATOM = "{http://www.w3.org/2005/Atom}"
PHONE, IDENTITY = "13812345678", "370725199001011234"


async def test_the_cap_feed_reads_the_archive_once_whatever_its_size(
    api: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed used to read every published notice, 200 at a time, until it had 50 alerts: a county with few
    alerts and a long archive had each anonymous request read all of it."""
    for n in range(200):  # a page's worth of newer published notices that are no alerts
        notice, _ = await api.store.create_notice(NoticeIn.model_validate({
            "topic": "air-quality", "title": f"通知{n}", "body": "正文", "target": {"areas": [TOWN_A]},
            "channels": ["sms"], "public": True,
        }), department="environment", created_by=None, actor="test")  # fmt: skip
        await api.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    reads: list[int] = []
    list_published = api.store.list_published

    async def counted(*args: Any, **kwargs: Any) -> Any:
        found = await list_published(*args, **kwargs)
        reads.append(len(found))
        return found

    monkeypatch.setattr(api.store, "list_published", counted)
    status, text, _ = await page(api, "/feeds/cap.atom")
    assert status == 200
    assert [entry.title for entry in feedparser.parse(text).entries] == ["重污染天气橙色预警"]
    assert reads == [1]  # one read, of the alerts only


async def publish(api: Api, dept: str = "env", approve: bool = True, **fields: Any) -> dict[str, Any]:
    body = {
        "topic": "air-quality" if dept == "env" else "social-assistance",
        "title": "公告",
        "body": "正文",
        "target": {"areas": [TOWN_A]},
        "public": True,
    }
    body.update(fields)
    status, notice = await api.call("POST", "/api/v1/notices", key=f"{dept}-issuer", json=body)
    assert status == 201, notice
    if approve:
        assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/submit", key=f"{dept}-issuer"))[0] == 200
        status, notice = await api.call("POST", f"/api/v1/notices/{notice['id']}/approve", key=f"{dept}-approver")
        assert status == 200, notice
    return notice


async def page(api: Api, path: str) -> tuple[int, str, dict[str, str]]:
    async with api.session.get(api.base + path) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


@pytest.fixture
async def published(api: Api) -> dict[str, dict[str, Any]]:
    return {
        "air": await publish(
            api,
            title="重污染天气橙色预警",
            body=f"请减少户外活动。咨询电话 {PHONE}，身份证 {IDENTITY}。",
            severity="severe",
            interpretation="简单说：这几天空气不好，老人孩子少出门。",
        ),
        "welfare": await publish(
            api, dept="civ", title="低保年审通知", target={"areas": [TOWN_B]}, domain="social-assistance"
        ),
        "private": await publish(api, title="内部通知不公开", public=False),
        "pending": await publish(api, title="尚未批准的公告", approve=False),
        "county": await publish(
            api, dept="civ", topic="disaster-relief", title="全县防汛通知", target={"areas": ["370725"]},
            channels=["feed"],
        ),
    }


async def test_the_column_shows_published_public_notices_only(api: Api, published: dict[str, Any]) -> None:
    status, html, headers = await page(api, "/public/notices")
    assert status == 200
    for shown in ("重污染天气橙色预警", "低保年审通知", "全县防汛通知"):
        assert shown in html
    for hidden in ("内部通知不公开", "尚未批准的公告"):
        assert hidden not in html
    domains = ("脱贫攻坚", "社会救助和社会福利", "教育", "基本医疗卫生", "环境保护", "灾害事故救援", "公共文化体育")
    assert all(domain in html for domain in domains)
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp and "frame-ancestors *" in csp


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("domain=environment", {"air"}),
        ("domain=social-assistance", {"welfare"}),
        ("department=civil-affairs", {"welfare", "county"}),
        (f"area={VILLAGE_B1}", {"welfare", "county"}),
        (f"area={TOWN_A}", {"air", "county"}),
        ("from=2000-01-01&to=2999-12-31", {"air", "welfare", "county"}),
    ],
)
async def test_search_by_domain_department_area_and_date(
    api: Api, published: dict[str, Any], query: str, expected: set[str]
) -> None:
    status, html, _ = await page(api, f"/public/notices?{query}")
    assert status == 200
    shown = {name for name, notice in published.items() if f'href="/public/notices/{notice["id"]}' in html}
    assert shown == expected


async def test_dates_outside_and_bad_filters(api: Api, published: dict[str, Any]) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    status, html, _ = await page(api, f"/public/notices?from={tomorrow}")
    assert status == 200 and "没有符合条件的公告" in html
    status, html, _ = await page(api, "/public/notices?from=0001-01-02&to=9999-12-30")  # the widest search
    assert status == 200 and "没有符合条件的公告" not in html
    for bad in ("domain=weather", "area=12", "from=2026-13-01", "page=0", "colour=red", "to=9999-12-31",
                "from=0001-01-01"):  # the last two: a filter's bound in UTC would leave the calendar
        async with api.session.get(f"{api.base}/public/notices?{bad}") as resp:
            assert resp.status == 422, bad
            assert (await resp.json())["errors"][0]["loc"].startswith("query."), bad


async def test_pages_of_twenty(api: Api) -> None:
    for n in range(23):
        await publish(api, title=f"公告第{n:02d}号")
    _, first, _ = await page(api, "/public/notices")
    assert first.count('<li class="notice') == 20 and "公告第22号" in first and 'rel="next"' in first
    _, second, _ = await page(api, "/public/notices?page=2")
    assert second.count('<li class="notice') == 3 and "公告第00号" in second and 'rel="prev"' in second


async def test_a_notice_page_shows_the_interpretation_beside_the_text_and_no_personal_data(
    api: Api, published: dict[str, Any]
) -> None:
    status, html, _ = await page(api, f"/public/notices/{published['air']['id']}")
    assert status == 200
    assert "政策解读" in html and "老人孩子少出门" in html and 'class="interpretation"' in html
    assert PHONE not in html and IDENTITY not in html
    assert "138****5678" in html and "370725********1234" in html
    for hidden in ("private", "pending"):
        assert (await page(api, f"/public/notices/{published[hidden]['id']}"))[0] == 404
    status, embedded, _ = await page(api, f"/public/notices/{published['air']['id']}?embed=1")
    assert status == 200 and 'class="site"' not in embedded
    status, cap, _ = await page(api, f"/public/notices/{published['air']['id']}/cap.xml")
    assert status == 200 and read_alert(cap.encode()).infos[0].headline == "重污染天气橙色预警"
    assert PHONE not in cap and IDENTITY not in cap  # the public CAP document is a public page too
    assert "138****5678" in read_alert(cap.encode()).infos[0].description
    status, staff_copy = await api.call("GET", f"/api/v1/notices/{published['air']['id']}/cap.xml")
    assert status == 200 and PHONE in staff_copy  # the department's own export is the notice as it is


async def test_a_notice_page_links_the_notices_feedback_form(api: Api, published: dict[str, Any]) -> None:
    air = published["air"]["id"]
    status, html, _ = await page(api, f"/public/notices/{air}")
    assert status == 200 and f'href="/public/notices/{air}/feedback" id="feedback-link"' in html
    status, form, _ = await page(api, f"/public/notices/{air}/feedback")
    assert status == 200 and 'name="text"' in form and "重污染天气橙色预警" in form


def _check_atom(text: str) -> ET.Element:
    """RFC 4287's required elements, checked on the XML itself: feed id, title, updated, a self link and an
    author (none of the entries has to carry one then); entry id, title, updated, link."""
    root = ET.fromstring(text)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    assert any(link.get("rel") == "self" for link in root.findall(f"{ATOM}link"))
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated", "link"):
            assert entry.find(f"{ATOM}{name}") is not None, name
    return root


async def test_a_notice_written_from_a_template_shows_its_rendered_text(api: Api) -> None:
    """Before, the public page, the feed and the kiosk showed only the title of a notice with no body."""
    measures = f"中小学停止户外活动。咨询电话 {PHONE}"
    data = {"level": "橙色", "start_date": "12月1日0时", "measures": measures}
    notice = await publish(api, title="重污染天气预警", body=None, template="heavy-pollution", data=data)
    status, html, _ = await page(api, f"/public/notices/{notice['id']}")
    assert status == 200
    assert "12月1日0时起启动重污染天气橙色预警。" in html and "中小学停止户外活动。" in html
    assert PHONE not in html  # the masking rules apply to the rendered text too
    status, text, _ = await page(api, "/feeds/notices.atom")
    [entry] = [e for e in feedparser.parse(text).entries if e.title == "重污染天气预警"]
    assert "12月1日0时起启动重污染天气橙色预警" in entry.summary
    status, kiosk, _ = await page(api, f"/kiosk?area={TOWN_A}")
    assert status == 200 and "12月1日0时起启动重污染天气橙色预警" in kiosk
    status, cap, _ = await page(api, f"/public/notices/{notice['id']}/cap.xml")  # it had no description at all
    description = read_alert(cap.encode()).infos[0].description or ""
    assert status == 200 and "12月1日0时起启动重污染天气橙色预警" in description and PHONE not in cap
    status, staff_copy = await api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml")
    assert status == 200 and PHONE in (read_alert(staff_copy.encode()).infos[0].description or "")


async def test_a_template_s_public_text_is_rendered_once_for_every_visitor(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The column, a notice's page, the feed and the kiosk are anonymous and show every visitor the same text: a
    template runs once for them all, not once per page, visitor and kiosk second."""
    data = {"level": "红色", "start_date": "12月9日0时", "measures": "停止户外活动（缓存测试）。"}
    notice = await publish(api, title="重污染天气红色预警", body=None, template="heavy-pollution", data=data)
    renders: list[Any] = []
    render = public_pages._RENDERER.render

    def counted(version: Any, kind: str, context: Any, language: str | None = None) -> dict[str, str | None]:
        renders.append(context["notice_id"])
        return render(version, kind, context, language)

    monkeypatch.setattr(public_pages._RENDERER, "render", counted)
    for path in [f"/public/notices/{notice['id']}", "/public/notices", "/feeds/notices.atom", f"/kiosk?area={TOWN_A}"]:
        for _ in range(2):
            status, text, _ = await page(api, path)
            assert status == 200 and "重污染天气红色预警" in text, path
    assert renders == [notice["id"]]
    status, text, _ = await page(api, f"/public/notices/{notice['id']}")
    assert "12月9日0时起启动重污染天气红色预警" in text  # the rendered text, kept


async def test_notices_feed_is_valid_atom(api: Api, published: dict[str, Any]) -> None:
    status, text, headers = await page(api, "/feeds/notices.atom")
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    _check_atom(text)
    feed = feedparser.parse(text)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title.endswith("政务公开 · 公示公告")
    titles = {entry.title for entry in feed.entries}
    assert titles == {"重污染天气橙色预警", "低保年审通知", "全县防汛通知"}
    air = next(entry for entry in feed.entries if entry.title == "重污染天气橙色预警")
    assert air.link.endswith(f"/public/notices/{published['air']['id']}")
    assert air.author == "生态环境分局" and PHONE not in air.summary
    assert {tag.term for tag in air.tags} == {"environment", "severe"}
    assert air.updated_parsed is not None
    status, only, _ = await page(api, "/feeds/notices.atom?domain=social-assistance")
    assert {entry.title for entry in feedparser.parse(only).entries} == {"低保年审通知"}


async def test_cap_feed_lists_published_alerts_with_their_cap_documents(api: Api, published: dict[str, Any]) -> None:
    status, text, _ = await page(api, "/feeds/cap.atom")
    assert status == 200
    _check_atom(text)
    feed = feedparser.parse(text)
    assert not feed.bozo, feed.bozo_exception
    assert [entry.title for entry in feed.entries] == ["重污染天气橙色预警"]  # the only one above info
    links = {link.type: link.href for link in feed.entries[0].links}
    path = links["application/cap+xml"].removeprefix("http://127.0.0.1:8080")
    status, cap, _ = await page(api, path)
    assert status == 200 and read_alert(cap.encode()).infos[0].severity == "Severe"


async def test_kiosk_lists_the_active_notices_of_its_area_and_above(api: Api, published: dict[str, Any]) -> None:
    lapsed = await publish(api, title="已过期的预警", expires_at="2030-01-01T00:00:00+08:00")
    # its expiry has come: a notice cannot be created already expired
    lapse = "UPDATE notices SET expires_at = ? WHERE id = ?"
    await run_sql(api.store.db, lapse, ("2019-12-31T16:00:00.000000+00:00", lapsed["id"]))
    async with api.session.get(f"{api.base}/kiosk/events?area={VILLAGE_B1}") as resp:
        assert resp.status == 200
        items = (await resp.json())["items"]
    assert {item["title"] for item in items} == {"低保年审通知", "全县防汛通知"}  # town B and the county
    status, html, headers = await page(api, f"/kiosk?area={TOWN_A}")
    assert status == 200 and "重污染天气橙色预警" in html and "已过期的预警" not in html and "低保年审通知" not in html
    assert '<script src="/public/assets/kiosk.js"' in html and "<script>" not in html
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert PHONE not in html
    assert (await page(api, "/kiosk?area=110101"))[0] == 404
    async with api.session.get(f"{api.base}/kiosk?area=abc") as resp:
        assert resp.status == 422


async def test_kiosk_events_stream_the_list_as_server_sent_events(api: Api, published: dict[str, Any]) -> None:
    headers = {"Accept": "text/event-stream"}
    async with api.session.get(f"{api.base}/kiosk/events?area={TOWN_A}", headers=headers) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        lines = []
        while not lines or lines[-1] != "":  # up to the blank line that ends the first notices event
            line = (await asyncio.wait_for(resp.content.readline(), timeout=10)).decode().rstrip("\n")
            if line.startswith("event:") or lines:
                lines.append(line)
    assert lines[0] == "event: notices"
    data = json.loads(lines[1].removeprefix("data: "))
    assert [item["title"] for item in data] == ["重污染天气橙色预警", "全县防汛通知"]  # the severe one first


async def next_notices_event(stream: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    """The list of the next ``notices`` event on an open kiosk stream (comments and ``retry`` skipped)."""
    event = None
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), timeout=10)).decode().rstrip("\n")
        if line == "event: notices":
            event = line
        elif event and line.startswith("data: "):
            return list(json.loads(line.removeprefix("data: ")))


async def test_the_kiosks_of_an_area_share_one_read_of_its_list(
    api: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream does not read the list itself: one reader per area serves every stream of it, so streams opened
    by the hundred (no login needed) do not multiply the reads of the database."""
    monkeypatch.setattr(kiosk, "POLL_SECONDS", 3600.0)  # one read for the whole test
    reads: list[str] = []
    read = api.store.active_public_notices

    async def counted(area: str) -> Any:
        reads.append(area)
        return await read(area)

    monkeypatch.setattr(api.store, "active_public_notices", counted)
    headers = {"Accept": "text/event-stream"}
    streams = [await api.session.get(f"{api.base}/kiosk/events?area={TOWN_A}", headers=headers) for _ in range(5)]
    try:
        lists = [await next_notices_event(stream) for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    assert [[item["title"] for item in found] for found in lists] == [["重污染天气橙色预警", "全县防汛通知"]] * 5
    assert reads == [TOWN_A]


async def test_a_new_notice_reaches_every_open_stream_of_its_area(
    api: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kiosk, "POLL_SECONDS", 0.05)
    headers = {"Accept": "text/event-stream"}
    streams = [await api.session.get(f"{api.base}/kiosk/events?area={TOWN_A}", headers=headers) for _ in range(3)]
    try:
        for stream in streams:
            await next_notices_event(stream)
        await publish(api, title="大风蓝色预警", severity="moderate")
        lists = [await next_notices_event(stream) for stream in streams]
    finally:
        for stream in streams:
            stream.close()
    assert all("大风蓝色预警" in [item["title"] for item in found] for found in lists)


async def test_one_address_may_hold_only_so_many_kiosk_streams(
    api: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream holds a connection for minutes: one client may not open them without end (each takes a file
    descriptor of the process, which the API and every page need too)."""
    monkeypatch.setattr(kiosk, "STREAMS_PER_CLIENT", 2)
    headers = {"Accept": "text/event-stream"}
    url = f"{api.base}/kiosk/events?area={TOWN_A}"
    streams = [await api.session.get(url, headers=headers) for _ in range(2)]
    try:
        for stream in streams:
            await next_notices_event(stream)  # both open and counted
        async with api.session.get(url, headers=headers) as refused:
            assert refused.status == 429 and refused.content_type == "application/problem+json"
            assert int(refused.headers["Retry-After"]) > 0
        async with api.session.get(f"{api.base}/kiosk/events?area={TOWN_B}", headers=headers) as other_area:
            assert other_area.status == 429  # per address, whatever the area
        async with api.session.get(url) as once:  # the list once, as JSON: no stream held
            assert once.status == 200
    finally:
        for stream in streams:
            stream.close()


async def test_a_stream_that_ended_leaves_room_for_the_next(
    api: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kiosk, "STREAMS_PER_CLIENT", 1)
    monkeypatch.setattr(kiosk, "STREAM_SECONDS", 0.05)  # the server ends each stream at once
    headers = {"Accept": "text/event-stream"}
    for _ in range(2):
        async with api.session.get(f"{api.base}/kiosk/events?area={TOWN_A}", headers=headers) as stream:
            assert stream.status == 200
            await asyncio.wait_for(stream.read(), timeout=10)  # to its end


async def test_the_feeds_and_cap_documents_stay_well_formed_whatever_a_notice_holds(api: Api) -> None:
    """U+FFFE and U+FFFF are no characters XML 1.0 may hold, though a title may: one such notice made the whole
    feed unreadable to every reader."""
    notice = await publish(api, title="预警\ufffe通知", body="请减少\uffff户外活动。", severity="severe")
    for path in ("/feeds/notices.atom", "/feeds/cap.atom"):
        status, text, _ = await page(api, path)
        assert status == 200
        feed = feedparser.parse(text)
        assert not feed.bozo, (path, feed.bozo_exception)
        assert [entry.title for entry in feed.entries] == ["预警通知"]
    status, cap, _ = await page(api, f"/public/notices/{notice['id']}/cap.xml")
    assert status == 200
    assert read_alert(cap.encode()).infos[0].headline == "预警通知"
    status, cap = await api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml")
    assert status == 200 and read_alert(cap.encode()).infos[0].description == "请减少户外活动。"
