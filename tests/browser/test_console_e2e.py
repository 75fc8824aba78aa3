"""The staff console's first "done when", end to end in Chromium, against the real app, its engine and an
outbox SMS channel (the files the gateway would receive):

a clerk logs in and changes the one-time password; a notice is composed from a template (through the API:
the compose page is not there yet, see docs/console.md) and the SMS segment count the console shows matches
what reaches the outbox; it is submitted; an approver rejects it with a comment; the clerk edits and
resubmits it; the approver approves it; the follow page's counts reach the final numbers by themselves.
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
from notifier.store import Store, open_database
from notifier.testing import FakeClock
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, seed_catalog

pytestmark = pytest.mark.peer("chromium")

RESIDENTS = {"13900000001": VILLAGE_A1, "13900000002": VILLAGE_A2, "13900000003": VILLAGE_B1}
CLERK_PASSWORD, APPROVER_PASSWORD = "文员的新密码-2026", "审核人的新密码-2026"


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
        "database": {"url": f"sqlite:///{tmp_path}/e2e.db"},
        "security": {"signing_secret": "console-e2e-test-secret"},
        "channels": {"sms": {"kind": "sms", "type": "outbox", "root": str(outbox)}},
    })  # fmt: skip
    db = await open_database(settings.database.url)
    await db.migrate()
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


async def _api(service: Service, key: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    async with service.http.request(method, f"{service.base}/api/v1{path}", json=body, headers=headers) as response:
        payload = await response.json(content_type=None)
        assert response.status in (200, 201), payload
        return payload


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
    _, clerk_key = await store.create_api_key(department="environment", role=Role.ISSUER, name="李文员", actor="test")

    # the clerk: first login, the one-time password changed
    await log_in(page, service.base, clerk.login, clerk_once, new_password=CLERK_PASSWORD)

    # composed from the heavy-pollution template, previewed, created and submitted through the API
    notice = {
        "topic": "air-quality", "title": "重污染天气预警", "template": "heavy-pollution", "severity": "severe",
        "data": {"level": "橙色", "start_date": "12月1日0时", "measures": "中小学停止户外活动。"},
        "target": {"areas": [TOWN_A, TOWN_B]}, "channels": ["sms"],
    }  # fmt: skip
    preview = await _api(service, clerk_key, "POST", "/notice-preview", notice)
    created = await _api(service, clerk_key, "POST", "/notices", notice)
    notice_id = created["id"]
    await _api(service, clerk_key, "POST", f"/notices/{notice_id}/submit")

    # the approver, in a browser of their own, rejects it with a comment
    approver_context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    approver_page = await approver_context.new_page()
    try:
        await log_in(approver_page, service.base, approver.login, approver_once, new_password=APPROVER_PASSWORD)
        await approver_page.click("nav >> text=待审核")
        await approver_page.click(f"a[href='/console/notices/{notice_id}']")
        await approver_page.wait_for_selector("#decision-form")
        shown_parts = int(await approver_page.text_content("#message-sms .sms-parts") or "0")
        assert shown_parts == preview["sms_segments"]
        await axe_check(approver_page)
        await screenshot(approver_page, "console-e2e-notice")  # docs/console-notice.png is a copy of it
        await approver_page.fill("#comment", "请写明预警解除的条件")
        await approver_page.click("#reject")
        await approver_page.wait_for_selector("#notice-state[data-state=rejected]")

        # the clerk edits and resubmits (the author only, as PUT /notices/{id} allows)
        notice["data"] = {**notice["data"], "measures": "中小学、幼儿园停止户外活动，老人儿童尽量减少外出，"
                       "工地停止土石方作业，空气质量连续24小时好转后解除。"}
        await _api(service, clerk_key, "PUT", f"/notices/{notice_id}", notice)
        await _api(service, clerk_key, "POST", f"/notices/{notice_id}/submit")

        # the approver sees the rejection in the history, and approves
        await approver_page.goto(f"{service.base}/console/notices/{notice_id}")
        history = await approver_page.text_content("#decisions")
        assert history is not None and "请写明预警解除的条件" in history
        shown_parts = int(await approver_page.text_content("#message-sms .sms-parts") or "0")
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
