"""The feedback inbox of the console in Chromium: the department's items with the overdue flag and filters, one
item assigned, answered (the answer reaches the resident's SMS outbox through the engine) and closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels import load_channels
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.engine.feedback import take_feedback
from notifier.store import Store
from notifier.store.feedback import NewFeedback
from notifier.testing import FakeClock
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import COUNTY, VILLAGE_A1

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "意见办理密码-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'
PHONE = "+8613900000031"


async def test_staff_assign_answer_and_close_feedback_and_the_answer_reaches_the_resident(
    console_server: str, store: Store, settings: Settings, tmp_path: Path, page: Any
) -> None:
    resident = await store.create_subscriber(SubscriberIn.model_validate(
        {"name": "吴六", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"],
         "topics": ["social-assistance"]}), "test")
    notice, _ = await store.create_notice(NoticeIn.model_validate(
        {"topic": "social-assistance", "title": "临时救助金发放通知", "body": "请于12月5日前到村委会领取。",
         "target": {"areas": [COUNTY]}, "channels": ["sms"]}), department="civil-affairs", created_by=None,
        actor="test")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    engine = Engine(store, settings, load_channels(settings), clock=FakeClock())
    await engine.run_until_idle()
    question = NewFeedback(channel="sms", text="名单什么时候公示？", notice_id=notice.id, contact="+8613900000099")
    long_ago = datetime.now(UTC) - timedelta(hours=80)
    late = await take_feedback(store, settings, question, actor="test", received=long_ago)
    asked = await take_feedback(store, settings, NewFeedback(
        channel="form", category="complaint", text=f"我家没有收到救助金{XSS}", notice_id=notice.id,
        subscriber_id=resident.id, contact=PHONE, contact_name="吴六"), actor="test")
    await take_feedback(store, settings, NewFeedback(channel="sms", text="别的部门的意见", department="environment",
                                                    contact="+8613900000098"), actor="test")
    clerk, one_time = await new_staff(store, department="civil-affairs", role=Role.ISSUER, name="赵办理")

    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=意见建议")
    await page.wait_for_selector("#inbox")
    assert await page.locator("#inbox tbody tr").count() == 2  # not the other department's
    assert await page.get_attribute(f"#item-{late}", "data-overdue") == "yes"
    assert await page.get_attribute(f"#item-{asked}", "data-overdue") == "no"
    assert await page.locator("#inbox img").count() == 0
    await axe_check(page)
    await screenshot(page, "console-feedback-inbox")
    await page.click("#filter-overdue")
    await page.wait_for_selector(f"#item-{late}")
    assert await page.locator("#inbox tbody tr").count() == 1

    await page.goto(f"{console_server}/console/feedback/{asked}")
    await page.wait_for_selector("#reply-form")
    assert f"我家没有收到救助金{XSS}" == await page.text_content("#item-text")
    assert await page.evaluate("() => window.__xss") is None
    await page.fill("#assigned_to", "赵办理")
    await page.click("#assign")
    await page.wait_for_selector("#item-assignee >> text=赵办理")
    await page.click("#reply")  # empty: refused, nothing sent
    await page.wait_for_selector("#text-error")
    assert (await store.get_feedback(asked)).state == "open"
    await page.fill("#reply-text", "经核实，救助金已于今日补发。")
    await page.click("#reply")
    await page.wait_for_selector("#item-state[data-state=answered]")
    await axe_check(page)
    await screenshot(page, "console-feedback-item")
    await page.fill("#outcome", "已补发，电话回访居民满意")
    await page.click("#close")
    await page.wait_for_selector("#item-state[data-state=closed]")
    assert await page.locator("#reply-form").count() == 0

    stored = await store.get_feedback(asked)
    assert (stored.assigned_to, stored.answer, stored.outcome) == ("赵办理", "经核实，救助金已于今日补发。",
                                                                  "已补发，电话回访居民满意")
    assert stored.answered_by == clerk.actor and stored.closed_by == clerk.actor
    await engine.run_until_idle()
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "outbox" / "sms").glob("*.txt")]
    answers = [t for t in texts if "经核实，救助金已于今日补发。" in t]
    assert len(answers) == 1 and f"To: {PHONE}" in answers[0]


async def test_an_erased_item_shows_its_retention_instead_of_the_text_and_offers_no_answer(
    console_server: str, store: Store, settings: Settings, page: Any
) -> None:
    received = datetime.now(UTC) - timedelta(days=731)
    erased = await take_feedback(store, settings, NewFeedback(
        channel="sms", text="低保金没到账", department="civil-affairs", contact=PHONE), actor="test",
        received=received)
    await store.erase_expired_feedback(datetime.now(UTC), 730)
    clerk, one_time = await new_staff(store, department="civil-affairs", role=Role.ISSUER, name="钱办理")
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{console_server}/console/feedback/{erased}")
    await page.wait_for_selector("#item-erased")
    assert "730" in await page.inner_text("#item-erased")
    assert await page.locator("#item-text").count() == 0
    assert await page.locator("#reply-form").count() == 0
    assert await page.locator("#close-form").count() == 1  # an abandoned item may still be closed
