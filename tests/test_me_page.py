"""/me (a resident's own settings) and subscribing by e-mail, against the real app on a real port.

Codes go out through the engine to RecordingChannels; e-mails through the real SMTP adapter to an aiosmtpd
server on 127.0.0.1 (tests/smtp_server.py); a test reads the code or link where the resident would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from notifier.domain.enums import NoticeState
from notifier.domain.errors import NotFound
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.residents import flow
from tests.conftest import VILLAGE_A1
from tests.smtp_server import Recorder, SmtpServer
from tests.test_subscribe_page import _CODE, _FORM_TOKEN, _REQUEST_TOKEN, E164, PHONE, Page, start

EMAIL = "li.ming@example.org"
_LINK = re.compile(r"(http://127\.0\.0\.1:8080(/[a-z/]+)\?token=([A-Za-z0-9_.%-]+))")
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def smtp(recorder: Recorder) -> Iterator[SmtpServer]:
    server = SmtpServer(recorder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def page(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Page]:
    async for p in start(tmp_path, mail=smtp):
        yield p


async def resident(page: Page, **fields: Any) -> int:
    data = {"name": "李明", "phone": E164, "area_code": VILLAGE_A1, "topics": ["air-quality"],
            "channels": ["sms"], "consent_source": "paper", **fields}  # fmt: skip
    return (await page.store.create_subscriber(SubscriberIn.model_validate(data), "test")).id


async def ask(page: Page, **fields: str) -> tuple[int, str]:
    async with page.session.get(f"{page.base}/me") as response:
        assert response.status == 200
        form_page = await response.text()
    form = {"form_token": _FORM_TOKEN.search(form_page)[1], "channel": "sms", "phone": PHONE,  # type: ignore[index]
            **fields}  # fmt: skip
    answer = await page.post("/me/ask", form)
    await page.engine.run_until_idle()
    return answer


async def open_me_by_sms(page: Page) -> str:
    """Ask for a code, type it; the /me page's URL (after the 303)."""
    status, code_page = await ask(page)
    assert status == 200 and "请输入验证码" in code_page
    code = _CODE.search(page.sms.messages[-1].text)[1]  # type: ignore[index]
    token = _REQUEST_TOKEN.search(code_page)[1]  # type: ignore[index]
    async with page.session.post(f"{page.base}/me/confirm", data={"request": token, "code": code},
                                 allow_redirects=False) as response:  # fmt: skip
        assert response.status == 303, await response.text()
        return response.headers["Location"]


async def get(page: Page, path: str) -> tuple[int, str]:
    async with page.session.get(f"{page.base}{path}") as response:
        return response.status, await response.text()


def settings_form(me_page: str, **fields: Any) -> list[tuple[str, str]]:
    base: dict[str, Any] = {"token": _TOKEN.search(me_page)[1], "form_token": _FORM_TOKEN.search(me_page)[1],  # type: ignore[index]
                            "topics": ["air-quality"], "rank_sms": "1", "quiet_start": "", "quiet_end": "",
                            "language": "zh", **fields}  # fmt: skip
    return [(k, v) for k, values in base.items() if values is not None
            for v in (values if isinstance(values, list) else [values])]  # fmt: skip


# --- /me by SMS code -------------------------------------------------------------------------------------------------


async def test_a_resident_opens_me_by_sms_code_changes_settings_and_leaves(page: Page) -> None:
    subscriber_id = await resident(page, email=EMAIL, channels=["sms", "email"])
    location = await open_me_by_sms(page)
    assert location.startswith("/me?token=")
    assert "通知设置验证码" in page.sms.messages[-1].text
    status, me = await get(page, location)
    assert status == 200 and "李明" in me and "138****8000" in me
    assert 'id="rank_sms"' in me and 'id="rank_email"' in me and 'id="rank_wechat"' not in me  # only usable ones

    form = settings_form(me, topics=["social-assistance", "disaster-relief"], rank_sms="2", rank_email="1",
                         quiet_start="22:00", quiet_end="07:00", language="en")  # fmt: skip
    status, saved = await page.post("/me", form)
    assert status == 200 and "已保存" in saved
    after = await page.store.get_subscriber(subscriber_id)
    assert sorted(after.topics) == ["disaster-relief", "social-assistance"]
    assert after.channels == ["email", "sms"] and after.language == "en"
    assert after.quiet_hours is not None and (after.quiet_hours.start, after.quiet_hours.end) == ("22:00", "07:00")
    actors = await page.rows("SELECT actor, action FROM audit_log WHERE object_id = ? ORDER BY id", str(subscriber_id))
    assert ("web:me", "subscriber.update") in actors

    # a notice reaches them, then they leave: their data goes, the delivery count stays
    notice, _ = await page.store.create_notice(NoticeIn.model_validate({
        "topic": "social-assistance", "title": "救助通知", "body": "请携带证件到村委会领取。",
        "target": {"areas": [VILLAGE_A1]}, "channels": ["sms"]}), department="civil-affairs", created_by=None,
        actor="test")  # fmt: skip
    await page.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    await page.engine.run_until_idle()
    assert await page.rows("SELECT COUNT(*) FROM deliveries WHERE subscriber_id = ?", subscriber_id) == [(1,)]

    status, me = await get(page, location)
    delete = {"token": _TOKEN.search(me)[1], "form_token": re.findall(r'name="form_token" value="([^"]+)"', me)[1],  # type: ignore[index]
              "confirm": "yes"}  # fmt: skip
    status, text = await page.post("/me/delete", {**delete, "confirm": ""})
    assert status == 422 and 'data-field="confirm"' in text
    status, text = await page.post("/me/delete", delete)
    assert status == 200 and "已删除" in text
    with pytest.raises(NotFound):
        await page.store.get_subscriber(subscriber_id)
    erased = await page.rows("SELECT name, phone, email FROM subscribers WHERE id = ?", subscriber_id)
    assert erased == [("", None, None)]
    assert await page.rows("SELECT COUNT(*) FROM deliveries WHERE subscriber_id = ?", subscriber_id) == [(1,)]
    assert await page.rows("SELECT actor FROM audit_log WHERE action = 'subscriber.delete' AND object_id = ?",
                     str(subscriber_id)) == [("web:me",)]  # fmt: skip
    assert (await get(page, location))[0] == 404  # the link of an erased resident


async def test_an_unknown_number_gets_the_same_page_and_no_message(page: Page) -> None:
    status, code_page = await ask(page)
    assert status == 200 and "如果该号码已订阅" in code_page
    assert not page.sms.messages and not await page.rows("SELECT 1 FROM direct_messages")
    token = _REQUEST_TOKEN.search(code_page)[1]  # type: ignore[index]
    status, text = await page.post("/me/confirm", {"request": token, "code": "123456"})
    assert status == 422 and "验证码不正确" in text


async def test_a_wrong_code_never_opens_me(page: Page) -> None:
    await resident(page)
    _, code_page = await ask(page)
    code = _CODE.search(page.sms.messages[-1].text)[1]  # type: ignore[index]
    token = _REQUEST_TOKEN.search(code_page)[1]  # type: ignore[index]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = [(await page.post("/me/confirm", {"request": token, "code": wrong}))[0] for _ in range(5)]
    assert statuses == [422, 422, 422, 422, 429]
    status, _ = await page.post("/me/confirm", {"request": token, "code": code})
    assert status == 429


async def test_a_tampered_or_expired_link_is_refused_with_a_page(page: Page) -> None:
    subscriber_id = await resident(page)
    location = await open_me_by_sms(page)
    token = unquote(location.split("token=")[1])
    body, signature = token.split(".")
    other = flow.me_token(page.settings.security.signing_secret, subscriber_id + 1, page.clock()).split(".")[0]
    for bad in (body[:-1] + ("A" if body[-1] != "A" else "B") + "." + signature, other + "." + signature,
                token + "x", "nonsense", ""):  # fmt: skip
        status, text = await get(page, f"/me?token={bad}")
        assert status == 403 and "链接无效" in text and 'href="/me"' in text, bad
    page.clock.advance(flow.ME_TTL + 1)
    status, text = await get(page, location)
    assert status == 410 and "链接已过期" in text
    form = [("token", token), ("form_token", "x"), ("topics", "air-quality"), ("rank_sms", "1")]
    assert (await page.post("/me", form))[0] == 410  # a save with an expired link too


async def test_posts_without_this_browsers_csrf_token_are_refused(page: Page) -> None:
    subscriber_id = await resident(page)
    location = await open_me_by_sms(page)
    _, me = await get(page, location)
    status, text = await page.post("/me", settings_form(me, form_token=None, topics=["education"]))
    assert status == 403 and 'data-field="form_token"' in text
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        async with other_browser.post(f"{page.base}/me", data=settings_form(me, topics=["education"])) as response:
            assert response.status == 403  # a token of this page, from a browser without its cookie
    async with aiohttp.ClientSession() as cookieless:
        async with cookieless.post(f"{page.base}/me/delete", data={"token": _TOKEN.search(me)[1],  # type: ignore[index]
                                                                    "confirm": "yes"}) as response:  # fmt: skip
            assert response.status == 403
    assert (await page.store.get_subscriber(subscriber_id)).topics == ["air-quality"]  # nothing changed


async def test_bad_settings_are_named_and_nothing_is_saved(page: Page) -> None:
    subscriber_id = await resident(page)
    _, me = await get(page, await open_me_by_sms(page))
    for fields, field in (({"topics": ["<script>x</script>"]}, "topics"), ({"rank_sms": "0"}, "channels"),
                          ({"quiet_start": "22:00"}, "quiet_hours"), ({"quiet_start": "25:00", "quiet_end": "x"},
                          "quiet_hours"), ({"language": "fr"}, "language"), ({"rank_email": "1"}, "channels")):
        status, text = await page.post("/me", settings_form(me, **fields))
        assert status == 422 and f'data-field="{field}"' in text, fields
        assert "<script>x" not in text
    assert (await page.store.get_subscriber(subscriber_id)).topics == ["air-quality"]


async def test_what_a_resident_typed_comes_back_escaped_on_me(page: Page) -> None:
    await resident(page, name='<script>alert("me")</script>')
    status, me = await get(page, await open_me_by_sms(page))
    assert status == 200 and "<script>alert" not in me and "&lt;script&gt;alert(&#34;me&#34;)" in me


# --- e-mail --------------------------------------------------------------------------------------------------------


def last_mail(recorder: Recorder, address: str) -> tuple[str, str, str]:
    """(subject, the link in it, the link's path) of the last e-mail to ``address``."""
    message = recorder.to(address)[-1].parsed()
    body = message.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found is not None
    return str(message["Subject"]), found[1].removeprefix("http://127.0.0.1:8080"), found[2]


async def test_me_link_by_email_goes_through_smtp(page: Page, recorder: Recorder) -> None:
    subscriber_id = await resident(page, email=EMAIL, channels=["email"])
    status, text = await ask(page, channel="email", email=EMAIL.upper().replace("EXAMPLE.ORG", "example.org"))
    assert status == 200 and "请查收邮件" in text
    subject, link, path = last_mail(recorder, EMAIL)
    assert "设置链接" in subject and path == "/me"
    status, me = await get(page, link)
    assert status == 200 and "李明" in me
    assert await page.rows("SELECT purpose, state, text FROM direct_messages") == [("me-link", "sent", "")]
    assert subscriber_id


async def test_subscribe_by_email_with_a_confirmation_link(page: Page, recorder: Recorder) -> None:
    status, form_page = await page.get(f"?area={VILLAGE_A1}&topic=air-quality")
    form = {"form_token": _FORM_TOKEN.search(form_page)[1], "area": VILLAGE_A1, "name": "王芳",  # type: ignore[index]
            "channel": "email", "email": "wang.fang@example.org", "topics": "air-quality", "consent": "yes"}
    status, text = await page.post("/subscribe", form)
    assert status == 200 and "请查收邮件" in text
    await page.engine.run_until_idle()
    subject, link, path = last_mail(recorder, "wang.fang@example.org")
    assert "确认订阅" in subject and path == "/subscribe/link"
    status, confirm_page = await get(page, link)  # opening the link (or a mail scanner) changes nothing
    assert status == 200 and not await page.rows("SELECT 1 FROM subscribers")
    token = re.search(r'name="link" value="([^"]+)"', confirm_page)[1]  # type: ignore[index]
    form_token = _FORM_TOKEN.search(confirm_page)[1]  # type: ignore[index]
    status, text = await page.post("/subscribe/link", {"link": token, "form_token": "forged"})
    assert status == 403 and not await page.rows("SELECT 1 FROM subscribers")
    status, text = await page.post("/subscribe/link", {"link": token, "form_token": form_token})
    assert status == 200 and "订阅成功" in text
    [(name, email, phone, channels)] = await page.rows("SELECT name, email, phone, channels FROM subscribers")
    assert (name, email, phone, channels) == ("王芳", "wang.fang@example.org", None, '["email"]')
    status, text = await page.post("/subscribe/link", {"link": token, "form_token": form_token})
    assert status == 200 and len(await page.rows("SELECT 1 FROM subscribers")) == 1  # a double tap
    page.clock.advance(flow.LINK_TTL + 1)
    status, text = await get(page, link)
    assert status == 410


async def test_a_forged_subscription_link_is_refused(page: Page) -> None:
    for token in ("", "abc", "eyJwIjoic3VibGluayIsInIiOjF9.AAAA"):
        status, text = await get(page, f"/subscribe/link?token={token}")
        assert status == 400 and "链接已失效" in text
