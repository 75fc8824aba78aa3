"""The staff console's first "done when", end to end in Chromium, against the real app, its engine and an
outbox SMS channel (the files the gateway would receive):

a clerk logs in and changes the one-time password, composes a notice from a template on the compose page, the
SMS segment count its preview shows matches what reaches the outbox, and submits it; an approver rejects it
with a comment; the clerk edits and resubmits it; the approver approves it; the follow page's counts reach the
final numbers by themselves.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, seed_catalog
from tests.databases import database_url, open_migrated

pytestmark = pytest.mark.peer("chromium")

RESIDENTS = {"13900000001": VILLAGE_A1, "13900000002": VILLAGE_A2, "13900000003": VILLAGE_B1}
CLERK_PASSWORD, APPROVER_PASSWORD = "文员的新密码-2026", "审核人的新密码-2026"
MEASURES = "中小学、幼儿园停止户外活动，老人儿童尽量减少外出，工地停止土石方作业，空气质量连续24小时好转后解除。"
expect = pytest.importorskip("playwright.async_api").expect


@dataclass
class Service:
    base: str
    store: Store
    engine: Engine
    outbox: Path
    http: aiohttp.ClientSession


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    outbox = tmp_path / "outbox"
    settings = Settings.model_validate({
        "database": {"url": database_url(tmp_path, "e2e.db")},
        "security": {"signing_secret": "console-e2e-test-secret"},
        "channels": {"sms": {"kind": "sms", "type": "outbox", "root": str(outbox)}},
    })  # fmt: skip
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed_catalog(store)
    engine = Engine(store, settings, load_channels(settings), clock=FakeClock(), jitter=lambda: 0.5)

    async def engine_factory(app: object) -> Engine | None:
        return engine

    server = TestServer(create_app(settings, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Service(str(server.make_url("")).rstrip("/"), store, engine, outbox / "sms", http)
    finally:
        await server.close()
        await db.close()


def _ucs2_parts(text: str) -> int:
    """SMS parts of a UCS-2 text by the textbook rule (3GPP TS 23.040): 70 characters in one part, 67 per part
    of a concatenated message; worked out here independently of the service's own counting."""
    return 1 if len(text) <= 70 else math.ceil(len(text) / 67)


def _outbox_texts(folder: Path) -> list[str]:
    return [path.read_text(encoding="utf-8").split("\n\n", 1)[1].rstrip("\n") for path in sorted(folder.glob("*.txt"))]


async def test_a_clerk_and_an_approver_take_a_notice_from_draft_to_its_final_counts(
    service: Service, browser: Any, page: Any
) -> None:
    store = service.store
    for n, (phone, area) in enumerate(RESIDENTS.items()):
        data = SubscriberIn(name=f"居民{n}", phone=phone, area_code=area, topics=["air-quality"], channels=["sms"])
        await store.create_subscriber(data, actor="test")
    clerk, clerk_once = await new_staff(store, role=Role.ISSUER, name="李文员")
    approver, approver_once = await new_staff(store, role=Role.APPROVER, name="王审核")

    # the clerk: first login, the one-time password changed
    await log_in(page, service.base, clerk.login, clerk_once, new_password=CLERK_PASSWORD)

    # composed from the heavy-pollution template on the compose page; its live preview shows the SMS parts
    await page.click("nav >> text=起草通知")
    await page.wait_for_selector("#compose-form[data-ready='1']")
    await page.select_option("#topic", "air-quality")
    await page.get_by_label("标题").fill("重污染天气预警")
    await page.check("input[name=content][value=template]")
    await page.select_option("#template", "heavy-pollution")
    await page.fill("#data-heavy-pollution-level", "橙色")
    await page.fill("#data-heavy-pollution-start_date", "12月1日0时")
    await page.fill("#data-heavy-pollution-measures", "中小学停止户外活动。")
    await page.select_option("#severity", "severe")
    await page.check(f"input[name='target.areas'][value='{TOWN_A}']")
    await page.check(f"input[name='target.areas'][value='{TOWN_B}']")
    if not await page.is_checked("input[name=channels][value=sms]"):
        await page.check("input[name=channels][value=sms]")
    await expect(page.locator("#preview #audience-residents")).to_have_text("3")
    composed_parts = int(await page.text_content("#preview #message-sms .sms-parts") or "0")
    await page.click("#submit-notice")
    await page.wait_for_selector("#notice-state[data-state='pending_approval']")
    notice_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert (await store.get_notice(notice_id)).created_by == clerk.key_id

    # the approver, in a browser of their own, rejects it with a comment
    approver_context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    approver_page = await approver_context.new_page()
    try:
        await log_in(approver_page, service.base, approver.login, approver_once, new_password=APPROVER_PASSWORD)
        await approver_page.click("nav >> text=待审核")
        await approver_page.click(f"a[href='/console/notices/{notice_id}']")
        await approver_page.wait_for_selector("#decision-form")
        assert int(await approver_page.text_content("#message-sms .sms-parts") or "0") == composed_parts
        await axe_check(approver_page)
        await screenshot(approver_page, "console-e2e-notice")  # docs/console-notice.png is a copy of it
        await approver_page.fill("#comment", "请写明预警解除的条件")
        await approver_page.click("#reject")
        await approver_page.wait_for_selector("#notice-state[data-state=rejected]")

        # the clerk edits and resubmits on the compose page
        await page.goto(f"{service.base}/console/notices/{notice_id}/edit")
        await page.wait_for_selector("#compose-form[data-ready='1']")
        assert "请写明预警解除的条件" in (await page.text_content("#rejection") or "")
        await page.fill("#data-heavy-pollution-measures", MEASURES)
        await expect(page.locator("#preview #message-sms pre.text")).to_contain_text("好转后解除")
        shown_parts = int(await page.text_content("#preview #message-sms .sms-parts") or "0")
        await page.click("#submit-notice")
        await page.wait_for_selector("#notice-state[data-state='pending_approval']")

        # the approver sees the rejection in the history and the same parts as the clerk, and approves
        await approver_page.goto(f"{service.base}/console/notices/{notice_id}")
        history = await approver_page.text_content("#decisions")
        assert history is not None and "请写明预警解除的条件" in history
        assert int(await approver_page.text_content("#message-sms .sms-parts") or "0") == shown_parts
        await approver_page.fill("#comment", "已核实")
        await approver_page.click("#approve")
        await approver_page.wait_for_selector("#follow-link")
    finally:
        await approver_context.close()
    assert (await store.get_notice(notice_id)).state is NoticeState.APPROVED

    # the clerk follows it: the counts reach their final numbers with no reload
    await page.goto(f"{service.base}/console/notices/{notice_id}/follow")
    await page.wait_for_selector("#live-state[data-state=approved]")
    await service.engine.run_until_idle()
    await page.wait_for_selector("#live-final")
    assert await page.text_content("#count-sms-sent") == "3"
    assert await page.text_content("#live-reach") == "100%"
    assert await page.text_content("#live-state") == "已完成"
    await axe_check(page)
    await screenshot(page, "console-e2e-follow")

    # what reached the outbox is what the console said: the same number of parts for each message
    texts = _outbox_texts(service.outbox)
    assert len(texts) == 3 and all("空气质量连续24小时好转后解除" in text for text in texts)
    assert {_ucs2_parts(text) for text in texts} == {shown_parts}
    assert shown_parts >= 2  # long enough to be split: the count is not the trivial one
