"""Residents' feedback: the public form reaches the department's inbox and the answer reaches the resident by SMS
through the engine (outbox); a WeChat message becomes feedback and its answer goes back by WeChat; the inbox is
department-scoped, flags overdue items, closes with an outcome, and the report counts it all."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from channels import load_channels
from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.engine.feedback import answer_feedback, take_feedback
from notifier.store import Store
from notifier.store.feedback import NewFeedback
from notifier.testing import FakeClock
from tests.conftest import COUNTY, VILLAGE_A1, Api
from tests.test_wechat_hooks import OPENID, Hook, hook, signed  # noqa: F401 - hook is a fixture

PHONE = "+8613900000021"
BODY = {"topic": "social-assistance", "title": "临时救助金发放通知", "body": "请于12月5日前到村委会领取救助金。",
        "target": {"areas": [COUNTY]}, "channels": ["sms"], "public": True}


async def sent_notice(api: Api, store: Store, settings: Settings, clock: FakeClock) -> tuple[int, int, Engine]:
    resident = await store.create_subscriber(SubscriberIn.model_validate(
        {"name": "周五", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"],
         "topics": ["social-assistance"]}), "test")
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=BODY)
    assert status == 201
    await api.call("POST", f"/api/v1/notices/{notice['id']}/submit", key="civ-issuer")
    await api.call("POST", f"/api/v1/notices/{notice['id']}/approve", key="civ-approver")
    engine = Engine(store, settings, load_channels(settings), clock=clock)
    await engine.run_until_idle()
    return int(notice["id"]), resident.id, engine


async def form(api: Api, browser: aiohttp.ClientSession, notice_id: int, **headers: str) -> str:
    """The form's token, read from its page (the browser keeps the CSRF cookie the token is bound to)."""
    async with browser.get(f"{api.base}/public/notices/{notice_id}/feedback",
                                         headers=headers) as response:
        assert response.status == 200
        page = await response.text()
    match = re.search(r'name="form_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def post_form(
    api: Api, browser: aiohttp.ClientSession, notice_id: int, fields: dict[str, str], **headers: str
) -> tuple[int, str]:
    url = f"{api.base}/public/notices/{notice_id}/feedback"
    async with browser.post(url, data=fields, headers=headers) as response:
        return response.status, await response.text()


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like client of the resident pages: it keeps cookies of 127.0.0.1 (aiohttp's default jar does
    not take cookies from an IP address)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def outbox_texts(root: Path) -> list[str]:
    return sorted(p.read_text(encoding="utf-8") for p in (root / "sms").glob("*.txt"))


async def test_public_form_feedback_reaches_the_inbox_and_the_answer_reaches_the_resident_by_sms(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings, tmp_path: Path
) -> None:
    clock = FakeClock()
    notice_id, resident_id, engine = await sent_notice(api, store, settings, clock)
    assert len(outbox_texts(tmp_path / "outbox")) == 1
    token = await form(api, browser, notice_id)
    text = "我家符合条件，但没有收到救助金，请核实。"
    status, page = await post_form(api, browser, notice_id, {"form_token": token, "category": "complaint", "text": text,
                                                    "name": "周五", "phone": "139 0000 0021"})
    assert status == 200 and "已收到" in page

    status, inbox = await api.call("GET", f"/api/v1/feedback?notice={notice_id}", key="civ-viewer")
    assert status == 200
    [item] = inbox["items"]
    assert (item["channel"], item["category"], item["text"], item["state"]) == ("form", "complaint", text, "open")
    assert (item["subscriber_id"], item["contact"], item["department"]) == (resident_id, PHONE, "civil-affairs")
    assert (await api.call("GET", "/api/v1/feedback", key="env-admin"))[1]["items"] == []
    assert (await api.call("GET", f"/api/v1/feedback/{item['id']}", key="env-issuer"))[0] == 404
    assert (await api.call("POST", f"/api/v1/feedback/{item['id']}/reply", key="civ-viewer",
                           json={"text": "x"}))[0] == 403

    answer = "经核实，您的救助金已于今日补发，请查收。"
    status, answered = await api.call("POST", f"/api/v1/feedback/{item['id']}/reply", key="civ-issuer",
                                      json={"text": answer})
    assert status == 200, answered
    assert answered["state"] == "answered" and answered["answer"] == answer and answered["reply_notice"]
    await engine.run_until_idle()
    replies = [t for t in outbox_texts(tmp_path / "outbox") if answer in t]
    assert len(replies) == 1 and f"To: {PHONE}" in replies[0] and "答复" in replies[0]
    status, reply_notice = await api.call("GET", f"/api/v1/notices/{answered['reply_notice']}", key="civ-viewer")
    assert reply_notice["answers_feedback"] == item["id"] and reply_notice["references"] == notice_id

    status, closed = await api.call("POST", f"/api/v1/feedback/{item['id']}/close", key="civ-issuer",
                                    json={"outcome": "已补发，居民无异议"})
    assert status == 200 and closed["state"] == "closed" and closed["outcome"] == "已补发，居民无异议"
    assert (await api.call("POST", f"/api/v1/feedback/{item['id']}/reply", key="civ-issuer",
                           json={"text": "再次答复"}))[0] == 409
    status, problem = await api.call("POST", f"/api/v1/feedback/{item['id']}/close", key="civ-issuer",
                                     json={"outcome": ""})
    assert status == 422 and problem["errors"][0]["loc"] == "outcome"

    late = datetime.now(UTC) - timedelta(hours=100)  # received long ago and never answered
    await take_feedback(store, settings, NewFeedback(channel="sms", text="什么时候发？", notice_id=notice_id,
                                                    contact=PHONE), actor="test", received=late)
    status, overdue = await api.call("GET", "/api/v1/feedback?overdue=true", key="civ-viewer")
    assert [(i["text"], i["overdue"]) for i in overdue["items"]] == [("什么时候发？", True)]
    status, report = await api.call("GET", "/api/v1/reports/feedback", key="civ-viewer")
    assert status == 200, report
    [figures] = report["items"]
    assert figures["department"] == "civil-affairs"
    assert (figures["received"], figures["answered"], figures["answered_in_time"]) == (2, 1, 1)
    assert figures["median_minutes_to_answer"] is not None
    assert (await api.call("GET", "/api/v1/reports/feedback?department=environment", key="civ-viewer"))[0] == 403
    status, audit = await api.call("GET", "/api/v1/audit?action=feedback.answered", key="civ-admin")
    assert len(audit["items"]) == 1


async def test_the_public_form_refuses_forgeries_foreign_sites_bad_fields_and_floods(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings
) -> None:
    notice_id, _, _ = await sent_notice(api, store, settings, FakeClock())
    fields = {"category": "opinion", "text": "建议在村委会门口张贴名单。"}
    assert (await post_form(api, browser, notice_id, fields))[0] == 400  # no token: the page comes first
    token = await form(api, browser, notice_id)
    status, page = await post_form(api, browser, notice_id, {**fields, "form_token": token + "x"})
    assert status == 400 and 'name="form_token"' in page
    foreign = await post_form(api, browser, notice_id, {**fields, "form_token": token}, Origin="https://evil.example")
    assert foreign[0] == 403
    async with api.session.post(f"{api.base}/public/notices/{notice_id}/feedback",
                                data={**fields, "form_token": token}) as response:
        assert response.status == 400  # the token is bound to the browser that opened the page
    bad = {**fields, "form_token": token, "phone": "12345", "text": ""}
    status, page = await post_form(api, browser, notice_id, bad)
    assert status == 422 and 'data-field="phone"' in page and 'data-field="text"' in page
    assert (await post_form(api, browser, notice_id + 99, {**fields, "form_token": token}))[0] == 404
    other = await form(api, browser, notice_id)
    assert (await post_form(api, browser, notice_id, {**fields, "form_token": other, "category": "spam"}))[0] == 422
    taken = [await post_form(api, browser, notice_id, {**fields, "form_token": token}) for _ in range(6)]
    assert [status for status, _ in taken] == [200] * settings.feedback.form_per_hour + [429]
    items, _ = await store.list_feedback(department="civil-affairs", unlinked=False, notice_id=notice_id, state=None,
                                         overdue=None, cursor=None, limit=50)
    assert len(items) == settings.feedback.form_per_hour



async def test_the_form_takes_feedback_only_on_notices_the_public_pages_show(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings
) -> None:
    """A notice that is not public (a personal relief notice, say) has no form: guessing its id shows
    neither the form nor the notice's title."""
    private = {**BODY, "public": False, "title": "某户临时救助金发放通知"}
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=private)
    assert status == 201
    await api.call("POST", f"/api/v1/notices/{notice['id']}/submit", key="civ-issuer")
    status, _ = await api.call("POST", f"/api/v1/notices/{notice['id']}/approve", key="civ-approver")
    assert status == 200
    async with browser.get(f"{api.base}/public/notices/{notice['id']}/feedback") as response:
        assert response.status == 404
        assert "某户临时救助金" not in await response.text()
    public_id, _, _ = await sent_notice(api, store, settings, FakeClock())
    token = await form(api, browser, public_id)
    fields = {"category": "opinion", "text": "建议在村委会门口张贴名单。", "form_token": token}
    assert (await post_form(api, browser, notice["id"], fields))[0] == 404

def message_xml(content: str) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>1395658920</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        "<MsgId>23456789012345678</MsgId></xml>"
    )


async def test_a_wechat_message_becomes_feedback_and_its_answer_goes_back_by_wechat(hook: Hook) -> None:  # noqa: F811
    notice_id = await hook.sent_delivery()
    assert await hook.call("POST", signed(), message_xml("请问领取时要带身份证吗？")) == (200, "success")
    items, _ = await hook.store.list_feedback(department="environment", unlinked=False, notice_id=None, state=None,
                                              overdue=None, cursor=None, limit=10)
    [item] = items
    assert (item.notice_id, item.channel, item.contact, item.text) == (notice_id, "wechat", OPENID,
                                                                         "请问领取时要带身份证吗？")
    assert item.subscriber_id is not None
    key, _ = await hook.store.create_api_key(department="environment", role=Role.ISSUER, name="x", actor="test")
    before = len(hook.wechat.messages)
    reply_notice = await answer_feedback(hook.store, key, "apikey:test", item, "需要携带本人身份证。")
    assert reply_notice is not None
    await hook.engine.run_until_idle()
    sent = hook.wechat.messages[before:]
    assert len(sent) == 1 and sent[0].recipient == OPENID and "需要携带本人身份证。" in sent[0].text
    assert hook.sms.messages == []  # the answer went back where the question came from


async def test_an_erased_item_reads_erased_after_its_retention_and_cannot_be_answered(
    api: Api, store: Store, settings: Settings
) -> None:
    received = datetime.now(UTC) - timedelta(days=settings.feedback.keep_days + 1)
    feedback_id = await take_feedback(store, settings, NewFeedback(
        channel="sms", text="我家低保金没到账", department="civil-affairs", contact=PHONE), actor="test",
        received=received)
    assert [row["id"] for row in await store.erase_expired_feedback(datetime.now(UTC), 730)] == [feedback_id]
    status, item = await api.call("GET", f"/api/v1/feedback/{feedback_id}", key="civ-viewer")
    assert status == 200
    assert (item["text"], item["contact"], item["erased_after_days"]) == ("erased after 730 days", None, 730)
    assert item["erased_at"] is not None and item["state"] == "open"
    status, problem = await api.call("POST", f"/api/v1/feedback/{feedback_id}/reply", key="civ-issuer",
                                     json={"text": "已核实"})
    assert status == 409 and "erased" in problem["detail"]
    assert (await store.get_feedback(feedback_id)).answer is None
