"""The approver's side of the console in Chromium: the queue of the department's notices waiting for
approval, a notice with its previews (the API's own), rejection with a required comment, approval, the
history of decisions, and the four-eyes rule."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.domain.staff import StaffMember
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_B1

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "审核密码-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'


async def _residents(store: Store) -> None:
    for n, area in enumerate([VILLAGE_A1, VILLAGE_A1, VILLAGE_B1]):
        resident = SubscriberIn(
            name=f"居民{n}", phone=f"1380013800{n}", area_code=area, topics=["air-quality"], channels=["sms"]
        )
        await store.create_subscriber(resident, actor="test")


async def _pending_notice(store: Store, author: StaffMember, title: str) -> int:
    notice = NoticeIn.model_validate({
        "topic": "air-quality", "title": title, "body": f"明天有重污染天气，请减少户外活动。{XSS}",
        "severity": "severe", "target": {"areas": [TOWN_A]}, "channels": ["sms"],
    })  # fmt: skip
    created, _ = await store.create_notice(
        notice, department=author.department, created_by=author.key_id, actor=author.actor
    )
    await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=author.actor)
    return created.id


async def test_an_approver_rejects_with_a_comment_then_approves(console_server: str, store: Store, page: Any) -> None:
    await _residents(store)
    clerk, _ = await new_staff(store, name="李文员", role=Role.ISSUER)
    approver, one_time = await new_staff(store, name="王审核", role=Role.APPROVER)
    first = await _pending_notice(store, clerk, f"重污染天气橙色预警{XSS}")
    second = await _pending_notice(store, clerk, "空气质量好转提示")

    await log_in(page, console_server, approver.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=待审核")
    await page.wait_for_selector("#queue")
    assert await page.locator("#queue tbody tr").count() == 2
    assert await page.locator("#queue img").count() == 0  # the title's markup is text
    await axe_check(page)
    await screenshot(page, "console-approvals")

    await page.click(f"a[href='/console/notices/{first}']")
    await page.wait_for_selector("#decision-form")
    assert XSS in (await page.text_content("#notice-title") or "")
    assert await page.evaluate("() => window.__xss") is None
    # the SMS as the gateway receives it, and the audience: two residents of the town, one elsewhere
    assert await page.text_content("#audience-residents") == "2"
    sms = await page.text_content("#message-sms pre")
    assert sms is not None and "明天有重污染天气" in sms
    assert int(await page.text_content("#sms-billable") or "0") >= 2
    await axe_check(page)
    await screenshot(page, "console-notice-pending")

    await page.click("#reject")  # no comment: refused, nothing decided
    await page.wait_for_selector("#comment-error")
    assert (await store.get_notice(first)).state is NoticeState.PENDING_APPROVAL
    await page.fill("#comment", f"请补充监测站数据{XSS}")
    await page.click("#reject")
    await page.wait_for_selector("#notice-state[data-state=rejected]")
    history = await page.text_content("#decisions")
    assert history is not None and "驳回" in history and f"请补充监测站数据{XSS}" in history and "王审核" in history
    stored = await store.get_notice(first)
    assert stored.state is NoticeState.REJECTED and stored.decisions[0].comment == f"请补充监测站数据{XSS}"
    assert stored.decisions[0].actor == approver.actor

    await page.goto(f"{console_server}/console/notices/{second}")
    await page.fill("#comment", "同意发布")
    await page.click("#approve")
    await page.wait_for_selector("#follow-link")
    stored = await store.get_notice(second)
    assert stored.state is NoticeState.APPROVED and stored.approved_by == approver.key_id
    assert stored.decisions[0].comment == "同意发布"
    await page.click("nav >> text=待审核")
    await page.wait_for_selector("#queue-empty")


async def test_the_author_never_approves_their_own_notice(console_server: str, store: Store, page: Any) -> None:
    author, one_time = await new_staff(store, name="赵自审", role=Role.APPROVER)
    notice_id = await _pending_notice(store, author, "自己起草的通知")
    await log_in(page, console_server, author.login, one_time, new_password=PASSWORD)
    await page.goto(f"{console_server}/console/notices/{notice_id}")
    await page.wait_for_selector("#own-notice")
    assert await page.locator("#approve").count() == 0
    token = await page.get_attribute("input[name=csrf_token]", "value")
    response = await page.request.post(
        f"{console_server}/console/notices/{notice_id}/approve", form={"csrf_token": token}, max_redirects=0
    )
    assert response.status == 403  # a hand-made POST is refused by the same rule as the API's
    assert (await store.get_notice(notice_id)).state is NoticeState.PENDING_APPROVAL


async def test_other_departments_and_roles_see_nothing(console_server: str, store: Store, page: Any) -> None:
    clerk, _ = await new_staff(store, role=Role.ISSUER)
    notice_id = await _pending_notice(store, clerk, "环境部门的通知")
    outsider, one_time = await new_staff(store, department="civil-affairs", role=Role.APPROVER, name="民政审核")
    await log_in(page, console_server, outsider.login, one_time, new_password=PASSWORD)
    response = await page.goto(f"{console_server}/console/notices/{notice_id}")
    assert response.status == 404  # another department's notice is not disclosed
    await axe_check(page)
    await screenshot(page, "console-error-404")
    await page.goto(f"{console_server}/console/approvals")
    await page.wait_for_selector("#queue-empty")

    issuer, password = await new_staff(store, role=Role.ISSUER, name="只起草")
    await page.context.clear_cookies()
    await log_in(page, console_server, issuer.login, password, new_password=PASSWORD)
    response = await page.goto(f"{console_server}/console/approvals")
    assert response.status == 403
    assert await page.locator("nav >> text=待审核").count() == 0
