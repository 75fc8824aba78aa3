"""The clerk's side of the console in Chromium: compose a notice with a live preview, submit it, edit it after a
rejection and submit it again; the SMS the preview showed is the SMS that reaches the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from channels.sms_text import count_segments
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import SubscriberIn, SubscriberPatch
from notifier.engine import Engine
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1

pytestmark = pytest.mark.peer("chromium")
expect = pytest.importorskip("playwright.async_api").expect
expect.set_options(timeout=20_000)  # a busy machine: the preview comes after the typing pauses

PASSWORD = "起草密码-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'
TITLE = "重污染天气橙色预警"
# with the title and the department this is more than 70 characters (and fewer than 134): two UCS-2 parts
BODY = ("明日起启动重污染天气橙色预警，中小学停止户外活动，请减少外出，老人儿童留在室内，注意防护健康。"
        "外出时请佩戴口罩，发现露天焚烧请拨打12345举报。")


@pytest.fixture
async def county(settings: Settings, store: Store) -> AsyncIterator[tuple[str, Engine]]:
    """The whole app with an engine over the outbox channels (driven by the test, pass by pass)."""
    engine = Engine(store, settings, dict(load_channels(settings)))

    async def engine_factory(app: object) -> Engine:
        return engine

    server = TestServer(create_app(settings, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), engine
    finally:
        await server.close()


async def residents(store: Store) -> None:
    people = [("甲", VILLAGE_A1, "13800138001"), ("乙", VILLAGE_A2, "13800138002"), ("丙", VILLAGE_A2, None),
              ("丁", VILLAGE_B1, "13800138004")]  # fmt: skip
    for name, area, phone in people:
        await store.create_subscriber(
            SubscriberIn(name=name, phone=phone, area_code=area, topics=["air-quality"], channels=["sms"]), "test"
        )
    opted = await store.create_subscriber(
        SubscriberIn(name="戊", phone="13800138005", area_code=VILLAGE_A1, topics=["air-quality"]), "test"
    )
    await store.update_subscriber(opted.id, SubscriberPatch(opt_out_topics=["air-quality"]), "test")


async def wait_for_preview(page: Any) -> None:
    await page.wait_for_selector("#preview #message-sms .sms-parts")


async def test_compose_preview_submit_edit_and_the_sms_that_reaches_the_outbox(
    county: tuple[str, Engine], store: Store, tmp_path: Path, page: Any
) -> None:
    base, engine = county
    await residents(store)
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    approver, _ = await new_staff(store, name="王审核", role=Role.APPROVER)
    await log_in(page, base, clerk.login, one_time, new_password=PASSWORD)

    await page.click("nav >> text=起草通知")
    await page.wait_for_selector("#compose-form[data-ready='1']")
    await axe_check(page)
    await page.select_option("#topic", "air-quality")
    await page.get_by_label("标题").fill(TITLE)
    await page.get_by_label("正文", exact=True).fill("明日起启动重污染天气橙色预警。")
    await page.check(f"input[name='target.areas'][value='{TOWN_A}']")
    await wait_for_preview(page)  # the preview came by itself while typing
    assert await page.text_content("#audience-residents") == "4"  # 甲, 乙, 丙 and 戊 live in town A
    assert await page.text_content("#audience-reached") == "2"
    skipped = await page.text_content("#audience-skipped") or ""
    assert "退订此主题 1" in skipped and "无可用联系方式 1" in skipped
    assert await page.text_content("#message-sms .sms-parts") == "1"
    await page.get_by_label("正文", exact=True).fill(BODY)  # longer: the preview follows
    await expect(page.locator("#message-sms .sms-parts")).to_have_text("2")
    assert await page.text_content("#sms-billable") == "4"  # 2 residents x 2 parts
    await axe_check(page)
    await screenshot(page, "console-compose")

    await page.click("#submit-notice")
    await page.wait_for_selector("#notice-state[data-state='pending_approval']")
    notice_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    notice = await store.get_notice(notice_id)
    assert (notice.title, notice.body, notice.target.areas, notice.created_by) == (TITLE, BODY, [TOWN_A], clerk.key_id)

    await store.decide_notice(
        notice_id, NoticeState.REJECTED, decider=approver.as_key(), actor=approver.actor, comment="请注明预警级别"
    )
    await page.reload()
    await page.click("#edit-link")
    await page.wait_for_selector("#compose-form[data-ready='1']")
    assert "请注明预警级别" in (await page.text_content("#rejection") or "")
    assert await page.input_value("#title") == TITLE  # the form holds the notice as it was
    await page.get_by_label("标题").fill(f"{TITLE}（Ⅱ级）")
    await page.check(f"input[name='target.areas'][value='{TOWN_B}']")
    await expect(page.locator("#audience-residents")).to_have_text("5")
    parts = int(await page.text_content("#message-sms .sms-parts") or "0")
    shown = await page.text_content("#message-sms pre.text")
    await axe_check(page)
    await screenshot(page, "console-compose-edit")
    await page.click("#submit-notice")
    await page.wait_for_selector("#notice-state[data-state='pending_approval']")

    await store.decide_notice(
        notice_id, NoticeState.APPROVED, decider=approver.as_key(), actor=approver.actor, comment=None
    )
    await engine.run_until_idle()
    outbox = sorted((tmp_path / "outbox" / "sms").glob("*.txt"))  # the settings fixture's outbox root
    assert len(outbox) == 3  # 甲, 乙 and 丁 of town B
    for file in outbox:
        text = file.read_text(encoding="utf-8").split("\n\n", 1)[1].rstrip("\n")
        assert text == shown
        assert count_segments(text).segments == parts == 2


async def test_what_is_typed_comes_back_as_text(county: tuple[str, Engine], store: Store, page: Any) -> None:
    base, _ = county
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    await log_in(page, base, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{base}/console/notices/new")
    await page.wait_for_selector("#compose-form[data-ready='1']")
    await page.get_by_label("标题").fill(f"标题{XSS}")
    await page.get_by_label("正文", exact=True).fill(f"正文{XSS}</textarea><script>window.__xss=2</script>")
    await page.click(f"#area-tree li:has(input[value='{TOWN_A}']) summary")  # the town's villages unfold
    await page.check(f"input[name='target.areas'][value='{VILLAGE_A1}']")
    await page.fill("#send_at", "2026-12-01T08:00")
    await page.fill("#expires_at", "2026-11-01T08:00")  # before send_at: refused, the form comes back
    await page.click("#preview-button")
    await page.wait_for_selector("#form-error")
    assert "expires_at" in (await page.text_content("#form-error") or "")
    assert await page.is_checked(f"input[name='target.areas'][value='{VILLAGE_A1}']")
    assert await page.input_value("#title") == f"标题{XSS}"
    assert (await page.input_value("#body")).endswith("<script>window.__xss=2</script>")
    assert await page.evaluate("window.__xss") is None
    await page.fill("#expires_at", "")
    await page.click("#preview-button")  # without script: the server renders the preview into the page
    await page.wait_for_selector("#preview #message-sms")
    assert XSS in (await page.text_content("#message-sms pre.text") or "")
    assert await page.locator("#preview img:not(.printout)").count() == 0
    assert await page.evaluate("window.__xss") is None
    await screenshot(page, "console-compose-refused")

    # the template's fields are typed too
    await page.check("input[name=content][value=template]")
    await page.select_option("#template", "heavy-pollution")
    await page.fill("#data-heavy-pollution-level", XSS)
    await page.fill("#data-heavy-pollution-start_date", "12月1日")
    await page.fill("#data-heavy-pollution-measures", f"措施{XSS}")
    await expect(page.locator("#message-sms pre.text")).to_contain_text("措施")
    assert XSS in (await page.text_content("#message-sms pre.text") or "")
    assert await page.evaluate("window.__xss") is None


async def test_the_preview_refuses_a_post_without_the_forms_token(
    county: tuple[str, Engine], store: Store, page: Any
) -> None:
    base, _ = county
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    await log_in(page, base, clerk.login, one_time, new_password=PASSWORD)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with aiohttp.ClientSession(cookies=cookies) as session:
        form = {"topic": "air-quality", "title": "t", "body": "b", "channels": "sms", "action": "submit"}
        for path in ("/console/notices/preview", "/console/notices/new"):
            async with session.post(base + path, data=form) as response:
                assert response.status == 403, path
    assert (await store.list_notices(department=None, state=None, cursor=None, limit=5))[0] == []
