"""The resident subscription page (/subscribe) against the real app on a real port, with a running engine.

The engine's SMS aliases are RecordingChannels: the page queues the code (a direct message), the engine
sends it (``submit`` runs the engine until idle, as its workers would), and a test reads the code from
the message the adapter got, as a resident reads it on the phone. The page's and the engine's clock is
a FakeClock, so expiry and the rate-limit windows move when a test says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.base import Channel, Failed
from channels.email_smtp import SmtpEmailChannel, SmtpEmailOptions
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from notifier.web.pages import CLOCK
from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_B1, seed_catalog
from tests.databases import database_url, open_migrated, read_rows
from tests.smtp_server import SmtpServer

PHONE, E164 = "13800138000", "+8613800138000"
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_REQUEST_TOKEN = re.compile(r'name="request" value="([^"]+)"')
_CODE = re.compile(r"验证码为(\d{6})")


@dataclass
class Page:
    """A resident's phone browser, and what the test can look at behind the page."""

    base: str
    session: aiohttp.ClientSession
    store: Store
    settings: Settings
    sms: RecordingChannel
    clock: FakeClock
    engine: Engine
    backup: RecordingChannel

    async def get(self, query: str) -> tuple[int, str]:
        async with self.session.get(f"{self.base}/subscribe{query}") as response:
            return response.status, await response.text()

    async def post(self, path: str, data: Any, **kwargs: Any) -> tuple[int, str]:
        async with self.session.post(f"{self.base}{path}", data=data, **kwargs) as response:
            assert response.content_type == "text/html", response.content_type
            return response.status, await response.text()

    async def submit(self, area: str = VILLAGE_A1, topic: str = "air-quality", **fields: Any) -> tuple[int, str]:
        """Open the QR code's page, fill it in (``None`` leaves a field out) and press the button."""
        status, page = await self.get(f"?area={area}&topic={topic}")
        assert status == 200, page
        form: dict[str, Any] = {
            "form_token": _FORM_TOKEN.search(page)[1],  # type: ignore[index]
            "area": area,
            "name": "李明",
            "phone": PHONE,
            "topics": topic,
            "consent": "yes",
            **fields,
        }
        pairs = [(k, v) for k, values in form.items() if values is not None
                 for v in (values if isinstance(values, list) else [values])]  # fmt: skip
        answer = await self.post("/subscribe", pairs)
        await self.engine.run_until_idle()  # the engine's workers send what the page queued
        return answer

    def code(self) -> str:
        return _CODE.search(self.sms.messages[-1].text)[1]  # type: ignore[index]

    async def confirm(self, page: str, code: str) -> tuple[int, str]:
        token = _REQUEST_TOKEN.search(page)[1]  # type: ignore[index]
        return await self.post("/subscribe/confirm", {"request": token, "code": code})

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await read_rows(self.settings.database.url, sql, *params)


def page_settings(tmp_path: Path, mail: bool = False, channels: dict[str, Any] | None = None) -> Settings:
    if channels is None:
        channels = {"sms-main": {"kind": "sms", "type": "recording"},
                    "sms-backup": {"kind": "sms", "type": "recording", "order": 1}}  # fmt: skip
    if mail:
        channels["mail"] = {"kind": "email", "type": "recording"}  # the adapter is the SMTP one built below
    return Settings.model_validate({
        "database": {"url": database_url(tmp_path, "subscribe.db")},
        "security": {"signing_secret": "subscribe-page-test-secret"},
        "server": {"public_url": "http://127.0.0.1:8080"},
        "channels": channels,
    })  # fmt: skip


def smtp_adapter(server: SmtpServer) -> SmtpEmailChannel:
    """The real SMTP adapter, to the aiosmtpd server of the test (no List-Unsubscribe on these messages)."""
    options = SmtpEmailOptions.model_validate({
        "host": server.host, "port": server.port, "start_tls": False, "timeout": 10,
        "local_hostname": "notify.example.test", "from_address": "notices@example.test", "list_unsubscribe": False,
    })  # fmt: skip
    return SmtpEmailChannel("mail", options)


async def start(
    tmp_path: Path, *, with_engine: bool = True, mail: SmtpServer | None = None, channels: dict[str, Any] | None = None
) -> AsyncIterator[Page]:
    settings = page_settings(tmp_path, mail is not None, channels)
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed_catalog(store)
    sms, backup, clock = RecordingChannel("sms-main"), RecordingChannel("sms-backup"), FakeClock()
    adapters: dict[str, Channel] = {"sms-main": sms, "sms-backup": backup}
    if mail is not None:
        adapters["mail"] = smtp_adapter(mail)
        await adapters["mail"].open()
    engine = Engine(store, settings, adapters, clock=clock)

    async def engine_factory(app: object) -> Engine | None:
        return engine if with_engine else None

    app = create_app(settings, store=store, engine_factory=engine_factory)
    app[CLOCK] = clock
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        # unsafe: keep cookies from an IP address (127.0.0.1), as browsers do; the forms need the CSRF cookie
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            yield Page(str(server.make_url("")).rstrip("/"), session, store, settings, sms, clock, engine, backup)
    finally:
        await server.close()
        if mail is not None:
            await adapters["mail"].close()
        await db.close()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async for p in start(tmp_path):
        yield p


def outbox(tmp_path: Path, kind: str, **fields: Any) -> dict[str, Any]:
    """A channel the process can load without an engine (a recording one is the test's own object)."""
    return {"kind": kind, "type": "outbox", "root": str(tmp_path / "outbox"), **fields}


@pytest.fixture
async def bare_page(tmp_path: Path) -> AsyncIterator[Page]:
    """An API node: the SMS channels configured, no engine in the process (``engine.workers = 0``)."""
    channels = {"sms-main": outbox(tmp_path, "sms"), "sms-backup": outbox(tmp_path, "sms", order=1)}
    async for p in start(tmp_path, with_engine=False, channels=channels):
        yield p


@pytest.fixture
async def mail_only_page(tmp_path: Path) -> AsyncIterator[Page]:
    async for p in start(tmp_path, with_engine=False, channels={"mail": outbox(tmp_path, "email")}):
        yield p


# --- the page ------------------------------------------------------------------------------------------------------


async def test_page_names_the_village_and_ticks_the_topic(page: Page) -> None:
    status, text = await page.get(f"?area={VILLAGE_A1}&topic=social-assistance")
    assert status == 200
    assert "宝都街道恒盛社区居民委员会" in text  # town + village
    assert "社会救助" in text and "空气质量" in text and "灾害救助" in text  # every topic
    assert re.search(r'value="social-assistance" checked', text)
    assert not re.search(r'value="air-quality" checked', text)
    assert "我同意接收昌乐县政府通过短信或电子邮件发送的公益通知，可随时退订（短信回复TD）" in text
    assert 'name="viewport"' in text and "<style>" in text and "http" not in text.split("<body>")[1]


async def test_topic_is_optional_and_an_unknown_one_is_ignored(page: Page) -> None:
    for query in (f"?area={VILLAGE_A1}", f"?area={VILLAGE_A1}&topic=nonsense", f"?area={VILLAGE_A1}&topic=<b>"):
        status, text = await page.get(query)
        assert status == 200 and " checked" not in text.split('name="topics"', 1)[1].split('name="consent"')[0]
        assert "<b>" not in text


@pytest.mark.parametrize("query", ["", "?area=", "?area=370725009999", "?area=370725999", "?area=370725",
                                   "?area=x'<script>"])
async def test_a_wrong_link_gets_a_friendly_404_page(page: Page, query: str) -> None:
    status, text = await page.get(query)
    assert status == 404
    assert "链接有误" in text and "二维码" in text and "<script>" not in text


async def test_a_town_link_lets_the_resident_pick_the_village(page: Page) -> None:
    status, text = await page.get(f"?area={TOWN_A}&topic=air-quality")
    assert status == 200 and "宝都街道" in text and '<select id="area" name="area"' in text
    assert f'<option value="{VILLAGE_A1}">' in text and f'value="{VILLAGE_B1}"' not in text  # B1 is another town's
    token = _FORM_TOKEN.search(text)[1]  # type: ignore[index]
    form = {"form_token": token, "board": TOWN_A, "name": "李明", "phone": PHONE, "topics": "air-quality",
            "consent": "yes"}  # fmt: skip
    status, again = await page.post("/subscribe", form)  # no village picked
    assert status == 422 and 'data-field="area"' in again
    status, again = await page.post("/subscribe", {**form, "area": VILLAGE_B1})  # a village of another town
    assert status == 422 and 'data-field="area"' in again
    status, code_page = await page.post("/subscribe", {**form, "area": VILLAGE_A1})
    assert status == 200
    await page.engine.run_until_idle()
    assert (await page.confirm(code_page, page.code()))[0] == 200
    resident = await page.store.get_subscriber(await page.store.find_subscriber_by_phone(E164) or 0)
    assert resident.area_code == VILLAGE_A1


# --- the whole flow ------------------------------------------------------------------------------------------------


async def test_scan_fill_in_confirm_creates_the_resident(page: Page, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    status, code_page = await page.submit()
    assert status == 200 and "请输入验证码" in code_page and "138****8000" in code_page
    [message] = page.sms.messages
    assert message.recipient == E164 and message.channel == "sms" and message.alias == "sms-main"
    assert re.fullmatch(r"您的订阅验证码为\d{6}，10分钟内有效。如非本人操作请忽略。", message.text)
    code = page.code()
    assert not await page.rows("SELECT 1 FROM subscription_requests WHERE code_hash = ? OR code_hash LIKE ?", code,
                         f"%{code}%")  # fmt: skip
    assert await page.store.find_subscriber_by_phone(E164) is None  # nothing before the code comes back

    status, done = await page.confirm(code_page, code)
    assert status == 200 and "订阅成功" in done
    subscriber_id = await page.store.find_subscriber_by_phone(E164)
    assert subscriber_id is not None
    resident = await page.store.get_subscriber(subscriber_id)
    assert (resident.name, resident.area_code, resident.topics, resident.channels) == (
        "李明", VILLAGE_A1, ["air-quality"], ["sms"])  # fmt: skip
    assert resident.consent.source == f"web:qr-code {VILLAGE_A1}"
    logged = await page.rows("SELECT action FROM audit_log WHERE object_id = ?", str(subscriber_id))
    actions = [row[0] for row in logged]
    assert "subscriber.create" in actions and "subscriber.subscribe" in actions
    assert E164 not in caplog.text and PHONE not in caplog.text and code not in caplog.text
    assert "+86138****8000" in caplog.text

    status, again = await page.confirm(code_page, code)  # a double tap
    assert status == 200 and "订阅成功" in again
    assert len(await page.rows("SELECT id FROM subscribers")) == 1


async def test_an_existing_resident_gets_the_topic_added(page: Page) -> None:
    data = {"name": "李明", "phone": E164, "area_code": VILLAGE_B1, "topics": ["air-quality"],
            "channels": ["wechat"], "wechat_openid": "oia2TjuEGTNoeX76QEjQNrcURxG8", "consent_source": "paper"}
    existing = await page.store.create_subscriber(SubscriberIn.model_validate(data), "test")  # fmt: skip
    status, code_page = await page.submit(name="李小明", topics=["social-assistance", "disaster-relief"])
    assert status == 200
    status, done = await page.confirm(code_page, page.code())
    assert status == 200 and "订阅成功" in done
    resident = await page.store.get_subscriber(existing.id)
    assert sorted(resident.topics) == ["air-quality", "disaster-relief", "social-assistance"]
    assert resident.channels == ["wechat", "sms"]
    assert (resident.name, resident.area_code, resident.consent.source) == ("李明", VILLAGE_B1, "paper")
    assert len(await page.rows("SELECT id FROM subscribers")) == 1
    assert await page.rows("SELECT 1 FROM audit_log WHERE action = 'subscriber.subscribe' AND object_id = ?",
                     str(existing.id))  # fmt: skip


async def test_wrong_code_thrice_then_the_right_one(page: Page) -> None:
    _, code_page = await page.submit()
    code = page.code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2):
        status, text = await page.confirm(code_page, wrong)
        assert status == 422 and f"还可以输入{left}次" in text and 'data-field="code"' in text
    status, text = await page.confirm(code_page, "12ab")  # not six digits: not counted
    assert status == 422 and "还可以输入2次" in text
    status, text = await page.confirm(code_page, code)
    assert status == 200 and "订阅成功" in text


async def test_five_wrong_codes_spend_the_request(page: Page) -> None:
    _, code_page = await page.submit()
    code = page.code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = [(await page.confirm(code_page, wrong))[0] for _ in range(5)]
    assert statuses == [422, 422, 422, 422, 429]
    status, text = await page.confirm(code_page, code)
    assert status == 429 and "重新获取" in text and f"/subscribe?area={VILLAGE_A1}" in text
    assert await page.store.find_subscriber_by_phone(E164) is None


async def test_an_expired_code_offers_to_start_again(page: Page) -> None:
    _, code_page = await page.submit()
    page.clock.advance(601)
    status, text = await page.confirm(code_page, page.code())
    assert status == 410 and "验证码已过期" in text
    assert f'href="/subscribe?area={VILLAGE_A1}&amp;topic=air-quality"' in text
    assert await page.store.find_subscriber_by_phone(E164) is None


async def test_a_forged_request_id_is_refused(page: Page) -> None:
    _, code_page = await page.submit()
    token = _REQUEST_TOKEN.search(code_page)[1]  # type: ignore[index]
    # the second-to-last character changed: it carries six bits of the signature (the last one carries only four,
    # the rest padding), so the forgery differs from the real one in every run ("AA" was the real ending 1 in 1,024)
    tampered = token[:-2] + ("B" if token[-2] == "A" else "A") + token[-1]
    for forged in ("", "1", tampered, "eyJwIjoic3VicmVxIiwiciI6MX0.AAAA"):
        status, text = await page.post("/subscribe/confirm", {"request": forged, "code": page.code()})
        assert status == 400 and "链接已失效" in text
    assert await page.store.find_subscriber_by_phone(E164) is None


# --- limits --------------------------------------------------------------------------------------------------------


async def test_one_code_per_phone_per_minute(page: Page) -> None:
    assert (await page.submit())[0] == 200
    status, text = await page.submit(phone="+86 138 0013 8000")  # the same number, written differently
    assert status == 429 and "1分钟" in text
    page.clock.advance(61)
    assert (await page.submit())[0] == 200
    assert len(page.sms.messages) == 2


async def test_five_codes_per_phone_per_day(page: Page) -> None:
    for _ in range(5):
        assert (await page.submit())[0] == 200
        page.clock.advance(61)
    status, text = await page.submit()
    assert status == 429 and "明天" in text
    page.clock.advance(86400)
    assert (await page.submit())[0] == 200


async def test_twenty_codes_per_client_address_per_hour(page: Page) -> None:
    for i in range(20):
        assert (await page.submit(phone=f"1390000{i:04d}"))[0] == 200
    async with page.session.get(f"{page.base}/subscribe?area={VILLAGE_A1}") as response:
        token = _FORM_TOKEN.search(await response.text())[1]  # type: ignore[index]
    form = {"form_token": token, "area": VILLAGE_A1, "name": "王芳", "phone": "13900009999", "topics": "air-quality",
            "consent": "yes"}  # fmt: skip
    async with page.session.post(f"{page.base}/subscribe", data=form) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "3600"
    assert len(page.sms.messages) == 20


# --- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "010-12345678"}, "phone"),  # a landline cannot take SMS
        ({"phone": None}, "phone"),
        ({"name": "  "}, "name"),
        ({"name": "长" * 101}, "name"),
        ({"topics": "no-such-topic"}, "topics"),
        ({"topics": None}, "topics"),
        ({"consent": None}, "consent"),
    ],
)
async def test_a_bad_field_is_named_and_nothing_is_stored(page: Page, fields: dict[str, Any], field: str) -> None:
    status, text = await page.submit(**fields)
    assert status == 422 and f'data-field="{field}"' in text
    assert 'name="form_token"' in text  # the form comes back, filled in
    assert not page.sms.messages and not await page.rows("SELECT 1 FROM subscription_requests")


async def test_an_unknown_area_in_the_post_is_named(page: Page) -> None:
    _, form_page = await page.get(f"?area={VILLAGE_A1}")
    token = _FORM_TOKEN.search(form_page)[1]  # type: ignore[index]
    for area in ("370725009999", "370725999", "", "<i>"):
        form = {"form_token": token, "area": area, "name": "李明", "phone": PHONE, "topics": "air-quality",
                "consent": "yes"}  # fmt: skip
        status, text = await page.post("/subscribe", form)
        assert status == 422 and 'data-field="area"' in text and "<i>" not in text
    assert not page.sms.messages and not await page.rows("SELECT 1 FROM subscription_requests")


async def test_input_is_escaped(page: Page) -> None:
    status, text = await page.submit(name='<script>alert("x")</script>', phone="<img src=x>")
    assert status == 422
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text and "&lt;img src=x&gt;" in text


async def test_the_form_token_binds_the_post_to_the_page(page: Page) -> None:
    status, text = await page.submit(form_token=None)
    assert status == 400 and 'data-field="form_token"' in text
    status, text = await page.submit(form_token="forged.token")
    assert status == 400
    _, other = await page.get(f"?area={VILLAGE_B1}")
    status, text = await page.submit(form_token=_FORM_TOKEN.search(other)[1])  # type: ignore[index]
    assert status == 400  # a token of another village's page
    _, form_page = await page.get(f"?area={VILLAGE_A1}")
    page.clock.advance(3601)
    form = {"form_token": _FORM_TOKEN.search(form_page)[1], "area": VILLAGE_A1, "name": "李明",  # type: ignore[index]
            "phone": PHONE, "topics": "air-quality", "consent": "yes"}  # fmt: skip
    status, text = await page.post("/subscribe", form)
    assert status == 400 and "1小时" in text and "李明" in text  # the values come back with a fresh token
    assert not page.sms.messages


# --- the SMS channel -----------------------------------------------------------------------------------------------


async def test_without_an_sms_channel_the_page_says_so(mail_only_page: Page) -> None:
    status, text = await mail_only_page.submit()
    assert status == 503 and "暂不支持短信" in text
    assert not await mail_only_page.rows("SELECT 1 FROM subscription_requests")


async def test_a_process_without_an_engine_queues_the_code_for_the_workers_elsewhere(bare_page: Page) -> None:
    status, text = await bare_page.submit()
    assert status == 200 and "暂不支持短信" not in text
    [row] = await bare_page.rows("SELECT purpose, alias, state FROM direct_messages")
    assert row == ("subscribe-code", "sms-main", "sent")  # by the engine the page's process does not run
    assert len(bare_page.sms.messages) == 1
    assert (await bare_page.confirm(text, bare_page.code()))[0] == 200


async def test_the_code_goes_through_a_delivery_record_and_the_text_is_blanked_once_sent(page: Page) -> None:
    status, code_page = await page.submit()
    assert status == 200
    [row] = await page.rows("SELECT purpose, channel, alias, address, state, attempts, text, provider_message_id "
                      "FROM direct_messages")  # fmt: skip
    assert row[:6] == ("subscribe-code", "sms", "sms-main", E164, "sent", 1)
    assert row[6] == "" and row[7]  # the code is no longer in the database once it left
    [message] = page.sms.messages
    assert message.priority > 100 and message.notice_id == 0 and message.delivery_id < 0
    assert not page.backup.messages
    assert (await page.confirm(code_page, page.code()))[0] == 200


async def test_a_code_the_primary_refused_fails_over_to_the_backup_gateway(page: Page) -> None:
    page.sms.plan(E164, Failed("blocked", "number on the blocklist"))
    status, code_page = await page.submit()
    assert status == 200
    assert [m.recipient for m in page.sms.messages] == [E164]  # tried on the primary first
    [message] = page.backup.messages
    assert message.alias == "sms-backup"
    query = "SELECT alias, state, attempts, last_error FROM direct_messages"
    [(alias, state, attempts, error)] = await page.rows(query)
    assert (alias, state, attempts) == ("sms-backup", "sent", 2) and error is None
    code = _CODE.search(message.text)[1]  # type: ignore[index]
    assert (await page.confirm(code_page, code))[0] == 200


async def test_a_code_both_gateways_refused_is_recorded_as_failed(page: Page) -> None:
    page.sms.plan(E164, Failed("blocked", "number on the blocklist"))
    page.backup.plan(E164, Failed("blocked", "number on the blocklist"))
    status, _ = await page.submit()
    assert status == 200  # the page cannot wait for the gateways; the resident asks again after a minute
    [(state, error, text)] = await page.rows("SELECT state, last_error, text FROM direct_messages")
    assert state == "failed" and error.startswith("sms-backup: blocked") and text == ""



# --- never a 500 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/subscribe", b"", {}),
        ("/subscribe", b"\xff\xfe\x00garbage", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/subscribe", b'{"area": "370725001036"}', {"Content-Type": "application/json"}),
        ("/subscribe", b"--x\r\nbroken multipart", {"Content-Type": "multipart/form-data; boundary=x"}),
        ("/subscribe", b"area=370725001036&topics=a&topics=%00&name=%ff&phone=" + b"9" * 5000, {
            "Content-Type": "application/x-www-form-urlencoded"}),
        ("/subscribe/confirm", b"request=&code=", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/subscribe/confirm", b"request=a.b&code=%ff%fe", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/subscribe/confirm", b"\x00" * 100, {"Content-Type": "text/plain"}),
    ],
)
async def test_fuzzed_posts_never_answer_500(page: Page, path: str, body: bytes, headers: dict[str, str]) -> None:
    status, text = await page.post(path, body, headers=headers)
    assert 400 <= status < 500 and "<html" in text
    assert not page.sms.messages
