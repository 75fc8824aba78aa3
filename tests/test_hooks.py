"""The Kannel hooks: alias and proof checks, DLR type -> receipt, MO opt-out words, decoding, and never a 500."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from channels.base import OutboundMessage
from channels.kannel import KannelChannel, KannelOptions, dlr_signature
from notifier.api import create_app, hooks
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.store.deliveries import iso_at
from notifier.testing import FakeClock, RecordingChannel
from tests.conftest import VILLAGE_A1
from tests.databases import read_rows

TOKEN = "t0ken-for-kannel"
TENCENT_TOKEN = "t0ken-for-tencent"
PHONE = "+8613800138000"


@dataclass
class Hooks:
    base: str
    session: aiohttp.ClientSession
    store: Store
    settings: Settings

    async def get(self, path: str, query: str, **kwargs: Any) -> tuple[int, str, str]:
        async with self.session.get(f"{self.base}{path}?{query}", **kwargs) as response:
            return response.status, response.content_type, await response.text()


@pytest.fixture
async def hooks_app(store: Store, settings: Settings) -> AsyncIterator[Hooks]:
    channels = {
        "kannel": {"kind": "sms", "type": "kannel", "username": "u", "password": "p", "hook_token": TOKEN},
        "kannel-b": {"kind": "sms", "type": "kannel", "username": "u", "password": "p"},  # no token: hooks off
        "sms": {"kind": "sms", "type": "failover", "aliases": ["kannel-b", "kannel"]},
        "sms-tencent": {"kind": "sms", "type": "tencent_sms", "secret_id": "AKID", "secret_key": "k",
                        "sdk_app_id": "1400006666", "sign_name": "昌乐县政府", "template_id": "449739",
                        "hook_token": TENCENT_TOKEN},
    }
    app_settings = Settings.model_validate({"database": {"url": settings.database.url}, "channels": channels})
    server = TestServer(create_app(app_settings, store=store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        try:
            yield Hooks(str(server.make_url("")).rstrip("/"), session, store, app_settings)
        finally:
            await server.close()


async def sent_delivery(h: Hooks, alias: str = "kannel") -> str:
    """One resident, one approved notice, sent through a recording channel: its provider message id."""
    await h.store.create_subscriber(
        SubscriberIn.model_validate({"name": "王芳", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    data = {"topic": "air-quality", "title": "预警", "body": "减少外出。", "target": {"areas": ["370725"]},
            "channels": ["sms"]}
    notice, _ = await h.store.create_notice(NoticeIn.model_validate(data), department="environment",
                                            created_by=None, actor="t")
    await h.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="t")
    await Engine(h.store, h.settings, {alias: RecordingChannel(alias)}).run_until_idle()
    [delivery] = (await h.store.list_deliveries(notice.id, None, 10))[0]
    assert delivery.state == "sent" and delivery.provider_message_id
    return delivery.provider_message_id


def dlr(provider_id: str, dlr_type: str, alias: str = "kannel", token: str = TOKEN) -> str:
    """The query of a DLR as Kannel sends it back: the adapter's signed dlr-url with ``%d`` filled in."""
    return f"alias={alias}&id={provider_id}&sig={dlr_signature(token, alias, provider_id)}&type={dlr_type}"


async def delivery_state(h: Hooks, provider_id: str, alias: str = "kannel") -> str:
    row = await h.store.find_delivery_by_provider_id(alias, provider_id)
    assert row is not None
    return str(row["state"])


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("alias=kannel&token=wrong&from=13800138000&text=TD", "wrong token"),
        ("alias=kannel&from=13800138000&text=TD", "no token"),
        (f"token={TOKEN}&from=13800138000&text=TD", "no alias"),
        (f"alias=nosuch&token={TOKEN}&from=13800138000&text=TD", "unknown alias"),
        ("alias=kannel-b&token=&from=13800138000&text=TD", "alias without a hook token"),
        (f"alias=kannel-b&token={TOKEN}&from=13800138000&text=TD", "another alias's token"),
        (f"alias=sms-tencent&token={TENCENT_TOKEN}&from=13800138000&text=TD", "a Tencent alias and its own token"),
        (f"alias=sms&token={TOKEN}&from=13800138000&text=TD", "a failover alias"),
    ],
)
async def test_mo_without_a_kannel_alias_and_its_token_is_a_403_problem(
    hooks_app: Hooks, query: str, reason: str
) -> None:
    resident = await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    status, content_type, body = await hooks_app.get("/hooks/kannel/mo", query)
    assert (status, content_type) == (403, "application/problem+json"), reason
    assert TOKEN not in body and TENCENT_TOKEN not in body
    assert (await hooks_app.store.get_subscriber(resident.id)).opt_out_channels == []


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (f"alias=kannel&id=x&type=1&sig={dlr_signature(TOKEN, 'kannel', 'y')}", "another message's signature"),
        (f"alias=kannel&id=x&type=1&sig={dlr_signature('wrong', 'kannel', 'x')}", "signed with another key"),
        (f"alias=kannel&token={TOKEN}&id=x&type=1", "the alias token instead of a signature"),
        ("alias=kannel&id=x&type=1", "no signature"),
        (f"id=x&type=1&sig={dlr_signature(TOKEN, 'kannel', 'x')}", "no alias"),
        (f"alias=kannel-b&id=x&type=1&sig={dlr_signature(TOKEN, 'kannel-b', 'x')}", "alias without a hook token"),
        (f"alias=kannel-b&id=x&type=1&sig={dlr_signature('', 'kannel-b', 'x')}", "no hook token, empty key"),
        (f"alias=sms-tencent&id=x&type=1&sig={dlr_signature(TENCENT_TOKEN, 'sms-tencent', 'x')}", "a Tencent alias"),
        (f"alias=sms-tencent&token={TENCENT_TOKEN}&id=x&type=1", "a Tencent alias and its token"),
    ],
)
async def test_dlr_without_its_signature_is_a_403_problem(hooks_app: Hooks, query: str, reason: str) -> None:
    status, content_type, body = await hooks_app.get("/hooks/kannel/dlr", query)
    assert (status, content_type) == (403, "application/problem+json"), reason
    assert TOKEN not in body and TENCENT_TOKEN not in body


async def test_a_dlr_url_is_worth_its_own_delivery_only(hooks_app: Hooks) -> None:
    """The dlr-url the adapter gives Kannel for delivery A (as Kannel's log would show it) cannot mark B."""
    provider_a = await sent_delivery(hooks_app)
    await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "张伟", "phone": "+8613700137000", "area_code": VILLAGE_A1,
                                     "channels": ["sms"]}), "t"
    )
    data = {"topic": "air-quality", "title": "预警", "body": "减少外出。", "target": {"areas": ["370725"]},
            "channels": ["sms"]}
    notice, _ = await hooks_app.store.create_notice(NoticeIn.model_validate(data), department="environment",
                                                    created_by=None, actor="t")
    await hooks_app.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="t")
    await Engine(hooks_app.store, hooks_app.settings, {"kannel": RecordingChannel("kannel")}).run_until_idle()
    deliveries, _ = await hooks_app.store.list_deliveries(notice.id, None, 10)
    provider_b = next(d.provider_message_id for d in deliveries if d.provider_message_id != provider_a)
    assert provider_b is not None

    options = hooks_app.settings.channels["kannel"].options
    adapter = KannelChannel("kannel", KannelOptions.model_validate(
        {**options, "dlr_url": f"{hooks_app.base}/hooks/kannel/dlr"}))
    url_for_a = adapter.dlr_url(OutboundMessage(7, notice.id, "sms", "kannel", PHONE, "预警", "n-s-sms"))
    assert url_for_a is not None and TOKEN not in url_for_a
    forged = URL(url_for_a.replace("%d", "2")).update_query(id=provider_b)
    async with hooks_app.session.get(forged) as response:
        assert response.status == 403
    assert await delivery_state(hooks_app, provider_b) == "sent"
    code, _, _ = await hooks_app.get("/hooks/kannel/dlr", dlr(provider_a, "1"))
    assert code == 200
    assert await delivery_state(hooks_app, provider_a) == "delivered"


async def test_the_previous_hook_token_still_works_during_a_rotation(store: Store, settings: Settings) -> None:
    channels = {"kannel": {"kind": "sms", "type": "kannel", "username": "u", "password": "p",
                           "hook_token": "new-token", "hook_token_previous": TOKEN}}
    app_settings = Settings.model_validate({"database": {"url": settings.database.url}, "channels": channels})
    server = TestServer(create_app(app_settings, store=store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            base = str(server.make_url("")).rstrip("/")
            for query, expected in [
                (dlr("unknown-1", "1", token=TOKEN), 200), (dlr("unknown-1", "1", token="new-token"), 200),
                (dlr("unknown-1", "1", token="older"), 403), (f"alias=kannel&token={TOKEN}&from=1&text=hi", 200),
                ("alias=kannel&token=new-token&from=1&text=hi", 200), ("alias=kannel&token=older&from=1&text=hi", 403),
            ]:
                async with session.get(f"{base}/hooks/kannel/{'dlr' if 'sig=' in query else 'mo'}?{query}") as r:
                    assert r.status == expected, query
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("dlr_type", "state", "status"),
    [("1", "delivered", "delivered"), ("2", "failed", "failed"), ("16", "failed", "failed"),
     ("8", "sent", "submitted"), ("4", "sent", "buffered")],
)
async def test_dlr_types(hooks_app: Hooks, dlr_type: str, state: str, status: str) -> None:
    provider_id = await sent_delivery(hooks_app)
    code, _, _ = await hooks_app.get("/hooks/kannel/dlr", dlr(provider_id, dlr_type) + "&reply=NACK%2Fno+SMSC")
    assert code == 200
    assert await delivery_state(hooks_app, provider_id) == state
    query = "SELECT alias, provider_message_id, status, detail FROM receipts"
    receipts = await read_rows(hooks_app.settings.database.url, query)
    detail = {"2": "not delivered to the phone; NACK/no SMSC", "16": "refused by the SMSC; NACK/no SMSC"}
    assert receipts == [("kannel", provider_id, status, detail.get(dlr_type, "NACK/no SMSC"))]


async def test_a_dlr_whose_smsc_reply_holds_nul_bytes_is_recorded(hooks_app: Hooks) -> None:
    """An SMPP receipt's ``text:`` is the message's first bytes: in UCS-2, ASCII characters carry NUL bytes,
    which PostgreSQL's text cannot hold; the report is recorded without them, not refused for ever with a 503."""
    provider_id = await sent_delivery(hooks_app)
    query = dlr(provider_id, "1") + "&reply=id%3A7+stat%3ADELIVRD+text%3A%00T%00D%00%00"
    assert (await hooks_app.get("/hooks/kannel/dlr", query)) == (200, "text/plain", "")
    assert await delivery_state(hooks_app, provider_id) == "delivered"
    receipts = await read_rows(hooks_app.settings.database.url, "SELECT status, detail FROM receipts")
    assert receipts == [("delivered", "id:7 stat:DELIVRD text:TD")]


@pytest.mark.parametrize(
    "query",
    [dlr("unknown-1", "1"), dlr("x", "abc"), dlr("", "1"), dlr("x", "99999"), dlr("x", "%C2%B9")],
)
async def test_unknown_or_malformed_receipts_get_an_empty_200(hooks_app: Hooks, query: str) -> None:
    assert (await hooks_app.get("/hooks/kannel/dlr", query)) == (200, "text/plain", "")


async def test_duplicate_dlr_and_post_form(hooks_app: Hooks) -> None:
    provider_id = await sent_delivery(hooks_app)
    for _ in range(2):
        async with hooks_app.session.post(
            f"{hooks_app.base}/hooks/kannel/dlr?alias=kannel",
            data={"id": provider_id, "type": "1", "sig": dlr_signature(TOKEN, "kannel", provider_id)},
        ) as response:
            assert response.status == 200
    assert await delivery_state(hooks_app, provider_id) == "delivered"


async def test_dlr_of_a_member_alias_finds_the_failover_delivery(hooks_app: Hooks) -> None:
    provider_id = await sent_delivery(hooks_app, alias="sms")  # the delivery carries the failover's alias
    code, _, _ = await hooks_app.get("/hooks/kannel/dlr", dlr(provider_id, "1"))
    assert code == 200
    assert await delivery_state(hooks_app, provider_id, alias="sms") == "delivered"
    # one receipt, the delivery's: none kept unmatched under the member alias it was looked for first
    receipts = await read_rows(hooks_app.settings.database.url, "SELECT delivery_id, alias, status FROM receipts")
    assert [(d is not None, a, s) for d, a, s in receipts] == [(True, "sms", "delivered")]


async def test_an_early_dlr_is_stamped_on_the_running_engines_clock(store: Store, settings: Settings) -> None:
    """A DLR that comes before its send is recorded is kept stamped on the clock of the process's engine, the clock
    its housekeeping purges by (tests/engine/test_early_receipts_purge.py); here 30 days ahead of the wall clock."""
    kannel = {"kind": "sms", "type": "kannel", "username": "u", "password": "p", "hook_token": TOKEN}
    app_settings = Settings.model_validate({"database": {"url": settings.database.url}, "channels": {"kannel": kannel}})
    clock = FakeClock(time.time() + 30 * 86400)
    engine = Engine(store, app_settings, {"kannel": RecordingChannel("kannel")}, clock=clock)

    async def engine_factory(app: object) -> Engine:
        return engine

    app = create_app(app_settings, store=store, engine_factory=engine_factory, extra_routes=hooks.ROUTES)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.make_url('/hooks/kannel/dlr')}?{dlr('early-1', '1')}") as response:
                assert response.status == 200
    finally:
        await server.close()
    receipts = await read_rows(settings.database.url, "SELECT provider_message_id, received_at FROM receipts")
    assert receipts == [("early-1", iso_at(clock()))]


def _utf16(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode("utf-16-be"))


@pytest.mark.parametrize(
    ("text_query", "opted_out"),
    [
        ("text=TD", True), ("text=td", True), ("text=+T+", True), ("text=n", True), ("text=R", True),
        ("text=%E9%80%80%E8%AE%A2&coding=1&charset=8-BIT", True),  # 退订 as UTF-8
        (f"text={_utf16('退订')}&coding=2&charset=UTF-16BE", True),  # 退订 as UCS-2
        (f"text={_utf16(' 退订 ')}&charset=UTF-16BE", True),
        ("text=TD%20", True), ("text=%EF%BC%B4%EF%BC%A4", True), ("text=%EF%BD%94%EF%BD%84", True),  # TD ＴＤ ｔｄ
        (f"text={_utf16('ＴＤ　')}&coding=2&charset=UTF-16BE", True),  # full-width, ideographic space, as UCS-2
        ("text=%E2%80%83td%E2%80%83", True),  # em spaces around
        ("text=TD+please", False), ("text=hello", False), ("text=", False), ("text=T+D", False),
        ("text=%E4%BD%A0%E5%A5%BD", False),  # 你好
    ],
)
async def test_mo_opt_out_words(hooks_app: Hooks, text_query: str, opted_out: bool,
                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    resident = await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    code, content_type, body = await hooks_app.get(
        "/hooks/kannel/mo", f"alias=kannel&token={TOKEN}&from=13800138000&{text_query}"
    )
    assert (code, content_type, body) == (200, "text/plain", "")  # Kannel's success, and no reply SMS
    after = await hooks_app.store.get_subscriber(resident.id)
    assert after.opt_out_channels == (["sms"] if opted_out else [])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("notifier")]
    assert lines and not any("13800138000" in line or TOKEN in line for line in lines)
    if not opted_out:
        assert any("+86138****8000" in line for line in lines)


async def test_mo_opt_out_is_audited_and_idempotent(hooks_app: Hooks) -> None:
    resident = await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    for word in ("TD", "退订"):
        async with hooks_app.session.post(f"{hooks_app.base}/hooks/kannel/mo",
                                          data={"alias": "kannel", "token": TOKEN, "from": PHONE, "text": word}) as r:
            assert r.status == 200
    assert (await hooks_app.store.get_subscriber(resident.id)).opt_out_channels == ["sms"]
    audit = await hooks_app.store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
    optouts = [(a["actor"], a["object_id"]) for a in audit if a["action"] == "subscriber.optout"]
    assert optouts == [("sms-reply", str(resident.id))] * 2
    assert all(PHONE not in str(a["detail"]) for a in audit if a["action"] == "subscriber.optout")


@pytest.mark.parametrize("sender", ["", "12", "not-a-number", "13900139999"])
async def test_mo_from_unusable_or_unknown_numbers_is_ignored(hooks_app: Hooks, sender: str) -> None:
    resident = await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    code, _, _ = await hooks_app.get("/hooks/kannel/mo", f"alias=kannel&token={TOKEN}&from={sender}&text=TD")
    assert code == 200
    assert (await hooks_app.store.get_subscriber(resident.id)).opt_out_channels == []


async def awaiting_notice(h: Hooks, title: str) -> int:
    """A notice asking for confirmation, sent by SMS through ``kannel`` to every resident: its id."""
    data = {"topic": "air-quality", "title": title, "body": "请回复1确认收到。", "target": {"areas": ["370725"]},
            "channels": ["sms"], "confirmation": {}}
    notice, _ = await h.store.create_notice(NoticeIn.model_validate(data), department="environment",
                                            created_by=None, actor="t")  # fmt: skip
    await h.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="t")
    await Engine(h.store, h.settings, {"kannel": RecordingChannel("kannel")}).run_until_idle()
    return notice.id


async def sms_state(h: Hooks, notice_id: int) -> str:
    [delivery] = (await h.store.list_deliveries(notice_id, None, 10))[0]
    return str(delivery.state)


async def test_an_mo_kannel_calls_again_with_its_id_is_taken_once(hooks_app: Hooks) -> None:
    """Kannel calls the get-url again when our answer did not reach it (http-request-retry): the same ``%I``.
    A second "1" taken would confirm the older notice too, which the resident never confirmed."""
    await hooks_app.store.create_subscriber(
        SubscriberIn.model_validate({"name": "王芳", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    older, latest = await awaiting_notice(hooks_app, "第一次通知"), await awaiting_notice(hooks_app, "第二次通知")
    confirm = f"alias=kannel&token={TOKEN}&from=%2B8613800138000&text=1&id=94f1581a-99f7-4b76-b7ac-92990eef18c1"
    for _ in range(2):
        assert (await hooks_app.get("/hooks/kannel/mo", confirm))[0] == 200
    assert (await sms_state(hooks_app, older), await sms_state(hooks_app, latest)) == ("sent", "confirmed")
    again = confirm.replace("id=94f1581a", "id=0a6e3b52")  # another message with the same text: taken
    assert (await hooks_app.get("/hooks/kannel/mo", again))[0] == 200
    assert await sms_state(hooks_app, older) == "confirmed"
