"""The follow page in Chromium: it updates by itself (server-sent events) while the engine sends, shows the
counts per channel and state, the reach, the table per town and the failures by reason; an update goes to
exactly the residents the notice reached; a notice can be cancelled from it."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import Failed
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.domain.staff import StaffMember
from notifier.store import Store
from tests.browser.conftest import EngineConsole, axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "跟进页面-密码-2026"
PHONES = {"13800000001": VILLAGE_A1, "13800000002": VILLAGE_A2, "13800000003": VILLAGE_B1, "13800000004": VILLAGE_A1}
BAD_PHONE = "+8613800000004"


async def _residents(store: Store) -> None:
    for n, (phone, area) in enumerate(PHONES.items()):
        data = SubscriberIn(name=f"居民{n}", phone=phone, area_code=area, topics=["air-quality"], channels=["sms"])
        await store.create_subscriber(data, actor="test")


async def _approved(
    store: Store, author: StaffMember, approver: StaffMember, title: str, channels: tuple[str, ...] = ("sms",)
) -> int:
    notice = NoticeIn.model_validate({
        "topic": "air-quality", "title": title, "body": "明天有重污染天气，请减少户外活动。",
        "severity": "severe", "target": {"areas": [TOWN_A, TOWN_B]}, "channels": list(channels),
    })  # fmt: skip
    created, _ = await store.create_notice(notice, department="environment", created_by=author.key_id,
                                           actor=author.actor)  # fmt: skip
    await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor="test")
    await store.decide_notice(created.id, NoticeState.APPROVED, decider=approver.as_key(), actor=approver.actor,
                              comment=None)  # fmt: skip
    return created.id


async def _cell(page: Any, selector: str, expected: str) -> None:
    """Wait (Playwright's own bounded wait) until the element's text is ``expected``, with no reload."""
    await page.wait_for_function(
        "([s, e]) => { const el = document.querySelector(s); return el !== null && el.textContent.trim() === e; }",
        arg=[selector, expected],
    )


async def test_the_follow_page_updates_itself_and_an_update_reaches_the_same_residents(
    engine_console: EngineConsole, page: Any
) -> None:
    served, store = engine_console, engine_console.store
    await _residents(store)
    served.sms.plan(BAD_PHONE, Failed("invalid-number", "no such subscriber"))
    clerk, one_time = await new_staff(store, role=Role.ISSUER, name="李文员")
    approver, _ = await new_staff(store, role=Role.APPROVER, name="王审核")
    notice_id = await _approved(store, clerk, approver, "重污染天气橙色预警")

    await log_in(page, served.base, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{served.base}/console/notices/{notice_id}/follow")
    await page.wait_for_selector("#live-state[data-state=approved]")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    await served.engine.run_until_idle()  # the engine fans out and sends; the page is not touched

    await _cell(page, "#count-sms-sent", "3")
    await _cell(page, "#count-sms-failed", "1")
    await _cell(page, f"#town-{TOWN_A} .reached", "2")
    await _cell(page, f"#town-{TOWN_B} .reached", "1")
    await _cell(page, "#live-reach", "75%")
    failures = await page.text_content("#live-failures")
    assert failures is not None and "invalid-number" in failures
    assert navigations == []  # it changed by itself: no reload, no navigation
    await page.wait_for_selector("#cancel-panel", state="hidden")  # nothing left to cancel once it is done
    await axe_check(page)
    await screenshot(page, "console-follow")

    await page.reload()  # the follow-up form is offered once the notice has gone out
    await page.check("#kind-update")
    await page.fill("#follow-body", "预警升级为红色，请留在室内。")
    await page.click("#follow-up")
    await page.wait_for_selector("#notice-state[data-state=pending_approval]")
    update_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    update = await store.get_notice(update_id)
    assert update.references == notice_id and update.target.referenced and update.title == "【更新】重污染天气橙色预警"
    await store.decide_notice(update_id, NoticeState.APPROVED, decider=approver.as_key(), actor=approver.actor,
                              comment=None)  # fmt: skip
    first_recipients = {m.recipient for m in served.sms.messages if m.notice_id == notice_id}
    await served.engine.run_until_idle()
    update_recipients = {m.recipient for m in served.sms.messages if m.notice_id == update_id}
    reached = first_recipients - {BAD_PHONE}
    assert update_recipients == reached and len(reached) == 3  # exactly those the first notice reached


async def test_a_notice_is_cancelled_from_its_follow_page(engine_console: EngineConsole, page: Any) -> None:
    served, store = engine_console, engine_console.store
    await _residents(store)
    approver, one_time = await new_staff(store, role=Role.APPROVER, name="王审核")
    clerk, _ = await new_staff(store, role=Role.ISSUER)
    notice_id = await _approved(store, clerk, approver, "将被撤销的通知")
    await log_in(page, served.base, approver.login, one_time, new_password=PASSWORD)
    await page.goto(f"{served.base}/console/notices/{notice_id}/follow")
    await page.fill("#reason", "数据有误")
    await page.click("#cancel")
    await page.wait_for_selector("#live-state[data-state=cancelled]")
    stored = await store.get_notice(notice_id)
    assert stored.state is NoticeState.CANCELLED and stored.reason == "数据有误"
    await served.engine.run_until_idle()
    assert [m for m in served.sms.messages if m.notice_id == notice_id] == []  # nothing went out
    assert not await page.is_visible("#cancel")


async def test_the_printouts_appear_per_village_with_their_print_job(engine_console: EngineConsole, page: Any) -> None:
    served, store = engine_console, engine_console.store
    await _residents(store)
    clerk, one_time = await new_staff(store, role=Role.ISSUER)
    approver, _ = await new_staff(store, role=Role.APPROVER, name="王审核")
    notice_id = await _approved(store, clerk, approver, "公告栏通知", channels=("sms", "bulletin"))
    await log_in(page, served.base, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{served.base}/console/notices/{notice_id}/follow")
    await page.wait_for_selector("#live-state[data-state=approved]")
    await served.engine.run_until_idle()
    for village in (VILLAGE_A1, VILLAGE_A2, VILLAGE_B1):  # every village of the two towns gets its printout
        done = f"#printout-{village} td[data-state=sent], #printout-{village} td[data-state=delivered]"
        await page.wait_for_selector(done)
    jobs = {m.recipient for m in served.board.messages if m.notice_id == notice_id}
    assert {VILLAGE_A1, VILLAGE_A2, VILLAGE_B1} <= jobs
    row = await page.text_content(f"#printout-{VILLAGE_A1}")
    assert row is not None and "恒盛社区" in row and "board" in row
    await axe_check(page)
    await screenshot(page, "console-follow-printouts")
