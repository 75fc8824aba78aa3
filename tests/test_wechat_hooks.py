"""The WeChat server URL: signature, freshness and replay checks, URL verification, TEMPLATESENDJOBFINISH receipts."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import notifier.engine as engine_module
from channels.base import Sent
from notifier.api import create_app
from notifier.api.wechat_hooks import ROUTES, receipt_status
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import database_url, open_migrated
from tests.engine.conftest import VILLAGE_A1, approved, delivery_rows, resident, seed

TOKEN = "county-wechat-callback-token"
OPENID = "oia2TjuEGTNoeX76QEjQNrcURxG8"
MSGID = "3487542469355618313"  # wider than a JS double: must survive as a string


def sign(token: str, timestamp: str, nonce: str) -> str:
    """Independent of the module under test: the documented sha1 of the sorted, joined values."""
    parts = sorted([token, timestamp, nonce])
    return hashlib.sha1((parts[0] + parts[1] + parts[2]).encode()).hexdigest()


def signed(token: str = TOKEN, *, age: float = 0, **extra: str) -> dict[str, str]:
    """Query parameters as WeChat signs them: the time of sending (``age`` seconds ago) and a fresh nonce."""
    timestamp, nonce = str(int(time.time() - age)), str(secrets.randbelow(10**10))
    return {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, **extra}


def event_xml(msgid: str = MSGID, status: str = "success", event: str = "TEMPLATESENDJOBFINISH") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        "<CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><MsgID>{msgid}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    )


@dataclass
class Hook:
    base: str
    session: aiohttp.ClientSession
    store: Store
    engine: Engine
    wechat: RecordingChannel
    sms: RecordingChannel

    async def call(self, method: str, params: dict[str, str], body: str | bytes | None = None) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.base}/hooks/wechat", params=params, data=body) as resp:
            if resp.content_type == "application/problem+json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def sent_delivery(self, provider_id: str = MSGID, phone: str | None = None) -> int:
        """A resident reached over WeChat, with the platform's msgid recorded as sent."""
        await resident(self.store, VILLAGE_A1, wechat_openid=OPENID, channels=["wechat", "sms"], phone=phone)
        self.wechat.plan(OPENID, Sent(provider_id))
        notice = await approved(self.store, channels=["wechat"])
        await self.engine.run_until_idle()
        [row] = await delivery_rows(self.store, notice.id)
        assert row["state"] == "sent"
        return notice.id


@contextlib.asynccontextmanager
async def running_hook(
    tmp_path: Path, *, before: dict[str, dict[str, Any]] | None = None, **wechat_options: object
) -> AsyncIterator[Hook]:
    """The hook over an engine whose ``wechat`` alias has the callback ``TOKEN``; ``before``: aliases configured
    ahead of it (each a RecordingChannel too)."""
    settings = Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "hooks.db")},
            "channels": {
                **(before or {}),
                "wechat": {"kind": "wechat", "type": "recording", "callback_token": TOKEN, **wechat_options},
                "sms": {"kind": "sms", "type": "recording"},
            },
        }
    )
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed(store)
    channels = {alias: RecordingChannel(alias) for alias in settings.channels}
    engine = Engine(store, settings, dict(channels), clock=FakeClock(), jitter=lambda: 0.5)

    async def engine_factory(app: object) -> Engine:
        return engine

    app = create_app(settings, store=store, engine_factory=engine_factory, extra_routes=ROUTES)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            base = str(server.make_url("")).rstrip("/")
            yield Hook(base, session, store, engine, channels["wechat"], channels["sms"])
    finally:
        await server.close()
        await db.close()


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[Hook]:
    async with running_hook(tmp_path) as running:
        yield running


async def test_url_verification_echoes_echostr(hook: Hook) -> None:
    assert await hook.call("GET", signed(echostr="5838479218127813673")) == (200, "5838479218127813673")


@pytest.mark.parametrize(
    "params",
    [
        signed(token="someone-elses-token", echostr="1"),
        {**signed(echostr="1"), "nonce": "tampered"},
        {"echostr": "1"},
        signed(echostr="1", alias="sms"),  # an alias without a callback token
        {**signed(echostr="1"), "signature": "é"},  # not hex: a str compare_digest refuses non-ASCII
        {**signed(echostr="1"), "signature": "签名" * 20},
    ],
)
async def test_bad_signature_is_403(hook: Hook, params: dict[str, str]) -> None:
    status, body = await hook.call("GET", params)
    assert status == 403 and body["type"] == "/problems/forbidden"
    status, body = await hook.call("POST", params, event_xml())
    assert status == 403 and body["type"] == "/problems/forbidden"


async def test_success_marks_the_delivery_delivered(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    notice_id = await hook.sent_delivery()
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="notifier")

    assert await hook.call("POST", signed(), event_xml()) == (200, "success")

    [row] = await delivery_rows(hook.store, notice_id)
    assert row["state"] == "delivered"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("notifier"))
    assert MSGID in ours  # the receipt was logged ...
    assert OPENID not in ours and TOKEN not in ours  # ... without the resident's openid or the token


async def test_a_receipt_finds_its_send_on_any_alias_sharing_the_callback_token(tmp_path: Path) -> None:
    """An official account has one server URL and token: its template messages and its subscribe notifications
    are two aliases pushing to one hook. A receipt without ``?alias=`` was applied to the first alias only and
    kept unapplied when its message went out through the other."""
    other = {"wechat-subscribe": {"kind": "wechat", "type": "recording", "order": 5, "callback_token": TOKEN}}
    async with running_hook(tmp_path, before=other) as hook:
        notice_id = await hook.sent_delivery()  # through "wechat", the first by order
        assert await hook.call("POST", signed(), event_xml()) == (200, "success")
        [row] = await delivery_rows(hook.store, notice_id)
        assert (row["alias"], row["state"]) == ("wechat", "delivered")


async def test_user_block_fails_the_delivery_and_falls_back(hook: Hook) -> None:
    notice_id = await hook.sent_delivery()

    assert await hook.call("POST", signed(alias="wechat"), event_xml(status="failed:user block")) == (200, "success")

    wechat = [row for row in await delivery_rows(hook.store, notice_id) if row["channel"] == "wechat"]
    assert [row["state"] for row in wechat] in (["failed"], ["fallback"])
    assert "user block" in (wechat[0]["last_error"] or "")


async def test_unknown_msgid_is_logged_and_answered_success(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="notifier")  # kept as an early receipt: the normal case, not a warning
    assert await hook.call("POST", signed(), event_xml(msgid="200163836")) == (200, "success")
    assert "200163836" in caplog.text


async def test_other_events_are_ignored(hook: Hook) -> None:
    notice_id = await hook.sent_delivery()
    assert await hook.call("POST", signed(), event_xml(event="subscribe")) == (200, "success")
    [row] = await delivery_rows(hook.store, notice_id)
    assert row["state"] == "sent"


@pytest.mark.parametrize(
    "body",
    [
        "<xml><MsgType>event</MsgType>",
        "not xml at all",
        "",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><MsgType>&a;</MsgType></xml>',
        "<xml><ToUserName>gh_1</ToUserName><Encrypt>c2VjcmV0</Encrypt></xml>",
        "<notxml><MsgType>event</MsgType></notxml>",
        event_xml(msgid=""),
        '<?xml version="1.0" encoding="x-no-such-charset"?>' + event_xml(),  # the parser's LookupError was a 500
    ],
)
async def test_unreadable_xml_is_400(hook: Hook, body: str) -> None:
    status, problem = await hook.call("POST", signed(), body.encode())
    assert status == 400
    assert problem["type"] == "/problems/bad-request"


async def test_a_replayed_callback_is_refused_and_not_applied(hook: Hook) -> None:
    """A seen URL (its signature, timestamp and nonce) cannot carry a forged failure that would re-send by SMS."""
    notice_id = await hook.sent_delivery(phone="+8613800138000")
    seen = signed()
    assert await hook.call("POST", seen, event_xml(event="subscribe")) == (200, "success")

    status, problem = await hook.call("POST", seen, event_xml(status="failed:user block"))

    assert status == 403 and problem["type"] == "/problems/forbidden"
    assert [row["state"] for row in await delivery_rows(hook.store, notice_id)] == ["sent"]
    await hook.engine.run_until_idle()
    assert hook.sms.messages == []  # no second message through the fallback channel


async def test_a_receipt_that_could_not_be_stored_can_be_pushed_again(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat pushes again after a 503; its nonce is only spent once the receipt is stored."""
    notice_id = await hook.sent_delivery()
    seen = signed()

    async def locked(*args: object, **kwargs: object) -> None:
        raise OSError("database is unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(engine_module, "record_receipt", locked)  # what the hooks call (notifier.api.hooks)
        assert (await hook.call("POST", seen, event_xml()))[0] == 503
    assert await hook.call("POST", seen, event_xml()) == (200, "success")
    assert [row["state"] for row in await delivery_rows(hook.store, notice_id)] == ["delivered"]


@pytest.mark.parametrize(("age", "accepted"), [(-290, True), (290, True), (310, False), (-310, False), (86400, False)])
async def test_callbacks_are_accepted_within_five_minutes_of_their_timestamp(
    hook: Hook, age: float, accepted: bool
) -> None:
    notice_id = await hook.sent_delivery()
    status, _ = await hook.call("POST", signed(age=age), event_xml())
    assert status == (200 if accepted else 403)
    assert (await hook.call("GET", signed(age=age, echostr="42")))[0] == (200 if accepted else 403)
    [row] = await delivery_rows(hook.store, notice_id)
    assert row["state"] == ("delivered" if accepted else "sent")


@pytest.mark.parametrize("timestamp", ["", "abc", "１７１４５５４０００", "1e9", "99999999999999999999", "-1"])
async def test_an_unusable_timestamp_is_403(hook: Hook, timestamp: str) -> None:
    nonce = "1514315871"
    params = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    status, problem = await hook.call("POST", params, event_xml())
    assert status == 403 and problem["type"] == "/problems/forbidden"


async def test_the_replay_window_is_configurable(tmp_path: Path) -> None:
    async with running_hook(tmp_path, callback_max_age=30) as hook:
        assert (await hook.call("POST", signed(age=60), event_xml()))[0] == 403
        assert (await hook.call("POST", signed(age=20), event_xml()))[0] == 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
async def test_a_doctype_in_utf16_is_refused(hook: Hook, encoding: str) -> None:
    notice_id = await hook.sent_delivery()
    body = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE xml [<!ENTITY s "failed:user block">]>'
        f"<xml><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>{MSGID}</MsgID>"
        "<Status>&s;</Status></xml>"
    )
    status, problem = await hook.call("POST", signed(), body.encode(encoding))
    assert status == 400 and problem["type"] == "/problems/bad-request"
    [row] = await delivery_rows(hook.store, notice_id)
    assert row["state"] == "sent"


async def test_a_utf16_receipt_without_a_doctype_is_read(hook: Hook) -> None:
    notice_id = await hook.sent_delivery()
    body = event_xml().replace("<xml>", '<?xml version="1.0" encoding="UTF-16"?><xml>', 1).encode("utf-16")
    assert await hook.call("POST", signed(), body) == (200, "success")
    [row] = await delivery_rows(hook.store, notice_id)
    assert row["state"] == "delivered"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("success", ("delivered", None)),
        ("failed:user block", ("failed", "user block")),
        ("failed: system failed", ("failed", "system failed")),
        ("failed:freq limit", ("failed", "freq limit")),
        ("sending", ("sending", None)),
    ],
)
def test_status_mapping(status: str, expected: tuple[str, str | None]) -> None:
    assert receipt_status(status) == expected


async def test_a_nonce_is_remembered_until_it_expires_then_forgotten(hook: Hook) -> None:
    store = hook.store
    assert await store.remember_hook_nonce("wechat:wechat", "1714554000:42", expires_at=100.0, now=50.0)
    assert not await store.remember_hook_nonce("wechat:wechat", "1714554000:42", expires_at=100.0, now=60.0)
    assert await store.remember_hook_nonce("wechat:other", "1714554000:42", expires_at=100.0, now=60.0)
    assert await store.remember_hook_nonce("wechat:wechat", "1714554000:42", expires_at=200.0, now=100.0)  # expired
    assert await store.purge_hook_nonces(now=150.0) == 1
    assert await store.purge_hook_nonces(now=200.0) == 1


def text_message_xml(content: str, msgid: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>1395658920</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]>"
        f"</Content><MsgId>{msgid}</MsgId></xml>"
    )


async def feedback_texts(store: Store) -> list[str]:
    items, _ = await store.list_feedback(department="environment", unlinked=False, notice_id=None, state=None,
                                         overdue=None, cursor=None, limit=10)  # fmt: skip
    return sorted(item.text for item in items)


async def test_a_text_message_pushed_again_under_a_new_signature_is_taken_once(hook: Hook) -> None:
    """WeChat pushes a message again when it had no answer within five seconds, and says to recognise the
    repeat by its MsgId: a second signature (timestamp, nonce) on it is no second message."""
    await hook.sent_delivery()
    question = text_message_xml("请问领取时要带身份证吗？", "23456789012345678")
    assert await hook.call("POST", signed(), question) == (200, "success")
    assert await hook.call("POST", signed(), question) == (200, "success")  # the repeat: answered, not taken
    assert await hook.call("POST", signed(), text_message_xml("在哪里领取？", "23456789012345679")) == (200, "success")
    assert await feedback_texts(hook.store) == ["在哪里领取？", "请问领取时要带身份证吗？"]
