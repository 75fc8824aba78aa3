"""The kiosk and the public pages in real Chromium: a new alert appears on an open kiosk within seconds
(server-sent events), a CAP Cancel takes it away, touch opens a notice; screenshots and axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from notifier.domain.enums import Role
from notifier.store import Store
from tests.browser.conftest import axe_check, screenshot
from tests.conftest import TOWN_A, VILLAGE_A1
from tests.test_cap import changle_alert

pytestmark = pytest.mark.peer("chromium")
SECONDS = 1000  # Playwright counts milliseconds
CAP_XML = {"Content-Type": "application/cap+xml"}


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession, keys: dict[str, str]) -> None:
        self.base, self.session, self.keys = base, session, keys

    async def call(self, method: str, path: str, key: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[key]}", **kwargs.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers, **kwargs) as resp:
            body = await resp.json()
            assert resp.status in (200, 201), body
            return body

    async def publish(self, **fields: Any) -> dict[str, Any]:
        body = {"topic": "air-quality", "title": "公告", "body": "正文", "target": {"areas": [TOWN_A]}, "public": True}
        notice = await self.call("POST", "/api/v1/notices", "issuer", json={**body, **fields})
        await self.call("POST", f"/api/v1/notices/{notice['id']}/submit", "issuer")
        approved: dict[str, Any] = await self.call("POST", f"/api/v1/notices/{notice['id']}/approve", "approver")
        return approved


@pytest.fixture
async def client(console_server: str, store: Store) -> AsyncIterator[Client]:
    keys = {}
    for role in (Role.ISSUER, Role.APPROVER):
        _, keys[role.value] = await store.create_api_key(
            department="environment", role=role, name=role.value, actor="test"
        )
    async with aiohttp.ClientSession() as session:
        yield Client(console_server, session, keys)


@pytest.fixture
async def touch_page(browser: Any) -> AsyncIterator[Any]:
    """A touch screen: touch events, no mouse hover; fails its test on a CSP violation or a script error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN", has_touch=True)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    try:
        yield page
    finally:
        await context.close()
    assert not problems, problems


async def test_a_new_alert_reaches_an_open_kiosk_and_a_cancel_takes_it_away(
    console_server: str, client: Client, touch_page: Any
) -> None:
    page = touch_page
    first = await client.publish(title="秋冬季空气质量提示", body="近期注意防护。", severity="minor")
    await page.goto(f"{console_server}/kiosk?area={VILLAGE_A1}")
    await page.wait_for_selector(f"#notice-{first['id']}")
    await page.wait_for_selector("#kiosk[data-updated]")  # the event stream delivered its first list

    alert = await client.call("POST", "/api/v1/cap", "issuer", data=changle_alert("kiosk-1"), headers=CAP_XML)
    assert (await page.locator(f"#notice-{alert['id']}").count()) == 0  # not before approval
    await client.call("POST", f"/api/v1/notices/{alert['id']}/approve", "approver")
    card = page.locator(f"#notice-{alert['id']}")
    await card.wait_for(timeout=10 * SECONDS)  # within seconds of the approval, with no reload
    assert "重污染天气橙色预警" in await card.inner_text()
    assert "severity-severe" in (await card.get_attribute("class") or "")
    first_in_list = page.locator("#notices li").first
    assert await first_in_list.get_attribute("id") == f"notice-{alert['id']}"  # most severe first
    assert await page.text_content("#count") == "2"

    older = page.locator(f"#notice-{first['id']}")  # open since the page showed it first: it stays so
    text = older.locator(".text")
    assert await text.is_visible()
    await older.locator("button.open").tap()
    await text.wait_for(state="hidden")
    await older.locator("button.open").tap()
    await text.wait_for(state="visible")

    await axe_check(page)
    await screenshot(page, "kiosk")

    ref = "370725000000@12379.cn,kiosk-1,2026-11-29T16:00:00+08:00"
    cancel = changle_alert("kiosk-2", msg_type="Cancel", references=ref)
    await client.call("POST", "/api/v1/cap", "issuer", data=cancel, headers=CAP_XML)
    await card.wait_for(state="detached", timeout=10 * SECONDS)
    assert await page.text_content("#count") == "1"


async def test_public_pages_screenshots_and_accessibility(console_server: str, client: Client, page: Any) -> None:
    await client.publish(
        title="重污染天气橙色预警",
        body="预计明起三天出现重污染天气，请减少户外活动，老人儿童尽量留在室内。\n学校停止户外活动。",
        severity="severe",
        interpretation="简单说：这三天空气很差。老人、孩子和有慢性病的人尽量别出门，出门戴口罩。",
    )
    notice = await client.publish(
        title="冬季清洁取暖补贴发放公示", body="补贴已于本月发放到户。", domain="poverty-alleviation"
    )
    await page.goto(f"{console_server}/public/notices")
    await page.wait_for_selector(f"a[href='/public/notices/{notice['id']}']")
    await axe_check(page)
    await screenshot(page, "public-notices")
    await page.click("text=重污染天气橙色预警")
    await page.wait_for_selector("aside.interpretation")
    await axe_check(page)
    await screenshot(page, "public-notice")
    await page.goto(f"{console_server}/kiosk?area=370725")
    await page.wait_for_selector("#kiosk[data-updated]")
    await axe_check(page)
