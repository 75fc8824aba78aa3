"""Anonymous pages take a bounded share of the render threads: while both threads are held by renderings of a
notice's public text, a flood of anonymous requests for it gets at most ``PUBLIC_RENDERINGS`` places (running or
waiting) and a 503 with Retry-After beyond, while a staff member's request and the engine's rendering are taken
and answered once the threads are free."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifier.cap.document import read_alert
from notifier.engine.render import RenderBudgetSpent
from notifier.engine.render_threads import PUBLIC_RENDERINGS, PUBLIC_RETRY_AFTER, RENDER_THREADS, rendered
from notifier.web import public_pages
from tests.conftest import Api
from tests.held_rendering import HOLD_LIMIT, HeldRendering
from tests.test_public_notices import page, publish

REFUSED = 3  # anonymous requests past the share
BURST = 20  # anonymous requests for one new notice at once


async def test_a_flood_of_anonymous_pages_is_refused_past_its_share_and_staff_and_engine_get_through(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"level": "橙色", "start_date": "12月3日0时", "measures": "停止户外活动（渲染线程份额测试）。"}
    notices = [  # one request per notice: requests for the same text would await one rendering
        await publish(api, title=f"渲染线程份额{n}", body=None, template="heavy-pollution", data=data)
        for n in range(PUBLIC_RENDERINGS + REFUSED)
    ]
    notice = notices[0]
    later = await publish(api, title="渲染线程份额之后", body=None, template="heavy-pollution",
                          data={**data, "start_date": "12月4日0时"})  # fmt: skip
    held = HeldRendering(monkeypatch, renderings=RENDER_THREADS)
    flood = {asyncio.create_task(page(api, f"/public/notices/{each['id']}")) for each in notices}
    assert await held.started()

    refused: list[tuple[int, str, dict[str, str]]] = []
    while len(refused) < REFUSED:  # the refused answer while the threads are held; the others cannot
        done, flood = await asyncio.wait(flood, timeout=HOLD_LIMIT, return_when=asyncio.FIRST_COMPLETED)
        assert done, "no anonymous request was answered while the render threads were held"
        refused += [task.result() for task in done]
    assert [(status, headers.get("Retry-After")) for status, _, headers in refused] == [
        (503, str(PUBLIC_RETRY_AFTER))
    ] * REFUSED
    assert all("reload in" in body and "<html" in body for _, body, _ in refused)  # a page for people
    assert all(headers["Content-Type"].startswith("text/html") for _, _, headers in refused)

    staff = asyncio.create_task(api.call("GET", f"/api/v1/notices/{notice['id']}/cap.xml", key="env-viewer"))
    engine = asyncio.ensure_future(rendered(str.upper, "engine work"))
    status, _, headers = await page(api, f"/public/notices/{later['id']}")  # the share is still taken
    assert status == 503 and headers["Retry-After"] == str(PUBLIC_RETRY_AFTER)
    assert not staff.done() and not engine.done()  # waiting for the threads, not refused

    held.release()
    status, cap = await staff
    assert status == 200 and "12月3日0时起启动重污染天气橙色预警" in str(read_alert(cap.encode()).infos[0].description)
    assert await engine == "ENGINE WORK"
    answers = await asyncio.gather(*flood)
    assert [status for status, _, _ in answers] == [200] * PUBLIC_RENDERINGS
    assert all("12月3日0时起启动重污染天气橙色预警" in body for _, body, _ in answers)
    assert held.events == ["rendering released"] * RENDER_THREADS
    status, body, _ = await page(api, f"/public/notices/{later['id']}")  # refused, not kept: rendered now
    assert status == 200 and "12月4日0时起启动重污染天气橙色预警" in body


def arrivals(api: Api, monkeypatch: pytest.MonkeyPatch, expected: int) -> asyncio.Event:
    """Set once ``expected`` public texts have read their template version: right after that read a request looks
    for the kept text, and awaits a rendering, without yielding in between."""
    arrived, all_arrived = 0, asyncio.Event()
    template_version = api.store.template_version

    async def arriving(*args: Any) -> Any:
        nonlocal arrived
        found = await template_version(*args)
        arrived += 1
        if arrived == expected:
            all_arrived.set()
        return found

    monkeypatch.setattr(api.store, "template_version", arriving)
    return all_arrived


async def test_a_burst_of_visitors_to_a_new_notice_costs_one_rendering(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BURST anonymous requests for one notice whose text is not kept yet all arrive while its first rendering is
    held in its thread: they await that one rendering, and all get its text (none is refused a place of the public
    share, which they would fill many times over if each rendered)."""
    data = {"level": "黄色", "start_date": "12月5日0时", "measures": "减少户外活动（同一渲染测试）。"}
    notice = await publish(api, title="同一渲染", body=None, template="heavy-pollution", data=data)
    renders: list[int] = []
    render = public_pages._RENDERER.render

    def counted(version: Any, kind: str, context: Any, language: str | None = None) -> dict[str, str | None]:
        renders.append(context["notice_id"])
        return render(version, kind, context, language)

    monkeypatch.setattr(public_pages._RENDERER, "render", counted)
    all_arrived = arrivals(api, monkeypatch, BURST)
    held = HeldRendering(monkeypatch)
    burst = [asyncio.create_task(page(api, f"/public/notices/{notice['id']}")) for _ in range(BURST)]
    assert await held.started()
    async with asyncio.timeout(HOLD_LIMIT):
        await all_arrived.wait()
    held.release()
    answers = await asyncio.gather(*burst)
    assert [status for status, _, _ in answers] == [200] * BURST
    assert all("12月5日0时起启动重污染天气黄色预警" in body for _, body, _ in answers)
    assert renders == [notice["id"]] and held.events == ["rendering released"]


async def test_a_failed_rendering_reaches_every_request_awaiting_it_and_is_not_kept(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one rendering a burst awaits goes past its request's budget: every request of the burst shows the title
    alone (as that request would), and the next request renders the text again."""
    data = {"level": "蓝色", "start_date": "12月6日0时", "measures": "注意防护（渲染失败测试）。"}
    notice = await publish(api, title="渲染失败", body=None, template="heavy-pollution", data=data)
    renders: list[int] = []
    render = public_pages._RENDERER.render

    def first_spent(version: Any, kind: str, context: Any, language: str | None = None) -> dict[str, str | None]:
        renders.append(context["notice_id"])
        rendered = render(version, kind, context, language)
        if len(renders) == 1:
            raise RenderBudgetSpent("template heavy-pollution", "the request's budget is spent")
        return rendered

    monkeypatch.setattr(public_pages._RENDERER, "render", first_spent)
    all_arrived = arrivals(api, monkeypatch, BURST)
    held = HeldRendering(monkeypatch)
    path = f"/public/notices/{notice['id']}"
    burst = [asyncio.create_task(page(api, path)) for _ in range(BURST)]
    assert await held.started()
    async with asyncio.timeout(HOLD_LIMIT):
        await all_arrived.wait()
    held.release()
    answers = await asyncio.gather(*burst)
    assert [status for status, _, _ in answers] == [200] * BURST
    assert not any("12月6日0时起启动重污染天气蓝色预警" in body for _, body, _ in answers)
    assert renders == [notice["id"]]
    status, body, _ = await page(api, path)
    assert status == 200 and "12月6日0时起启动重污染天气蓝色预警" in body and len(renders) == 2
