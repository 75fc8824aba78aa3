"""The Aliyun SmsReport and Tencent SMS status callback hooks, against the real app on a real port.

Each test runs for both platforms: the documented example pushes (with our provider ids in them) mark
deliveries delivered or failed, the documented answers come back, and tokens, malformed bodies,
unknown and repeated receipts behave; no body makes the hook answer 500.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.aliyun_sms import AliyunSmsOptions
from channels.base import Sent
from channels.tencent_sms import TencentSmsOptions
from notifier.api import create_app
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import database_url, open_migrated, read_rows, run_sql
from tests.engine.conftest import VILLAGE_A1, approved, delivery_rows, resident, seed

ALIYUN_TOKEN = "aliyun-receipts-2b7e1516"
TENCENT_TOKEN = "tencent-receipts-28aed2a6"
PREVIOUS_TOKEN = "receipts-before-the-change-9c1f"  # each alias's hook_token_previous
PHONE = "+8613800138000"
OPENID = "oia2TjuEGTNoeX76QEjQNrcURxG8"


def aliyun_report(biz_id: str, *, success: bool = True) -> dict[str, Any]:
    """One entry of the documented SmsReport push (help.aliyun.com doc 101867), for ``biz_id``."""
    return {
        "phone_number": "13800138000",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:00:00",
        "success": success,
        "err_code": "DELIVERED" if success else "MK:0001",
        "err_msg": "用户接收成功" if success else "用户关机",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": "67890",
    }


def tencent_report(sid: str, *, success: bool = True) -> dict[str, Any]:
    """One entry of the documented status callback (Tencent Cloud SMS doc 43547), for ``sid``."""
    return {
        "user_receive_time": "2015-10-17 08:03:04",
        "nationcode": "86",
        "mobile": "13800138000",
        "report_status": "SUCCESS" if success else "FAIL",
        "errmsg": "DELIVRD" if success else "UNDELIV",
        "description": "用户短信送达成功" if success else "用户短信未送达",
        "sid": sid,
    }


@dataclass(frozen=True)
class Vendor:
    name: str
    alias: str
    path: str
    token: str
    provider_id: str  # as the platform's SendSms answer documents it
    report: Callable[..., dict[str, Any]]
    answer: dict[str, Any]
    failure_text: str


ALIYUN = Vendor("aliyun", "sms-aliyun", "/hooks/aliyun-sms", ALIYUN_TOKEN, "496112870375361879^0", aliyun_report,
                {"code": 0, "msg": "接收成功"}, "MK:0001 用户关机")
TENCENT = Vendor("tencent", "sms-tencent", "/hooks/tencent-sms", TENCENT_TOKEN, "2028:f825de8f0747639f4100",
                 tencent_report, {"result": 0, "errmsg": "OK"}, "UNDELIV 用户短信未送达")
OTHER = {"aliyun": TENCENT, "tencent": ALIYUN}


def channel_settings(db_url: str) -> Settings:
    return Settings.model_validate({
        "database": {"url": db_url},
        "channels": {
            "sms-aliyun": {"kind": "sms", "type": "aliyun_sms", "access_key_id": "LTAI-test-id",
                           "access_key_secret": "s", "sign_name": "昌乐县政府", "template_code": "SMS_100000001",
                           "hook_token": ALIYUN_TOKEN, "hook_token_previous": PREVIOUS_TOKEN},
            "sms-tencent": {"kind": "sms", "type": "tencent_sms", "order": 1, "secret_id": "AKID-test",
                            "secret_key": "s", "sdk_app_id": "1400006666", "sign_name": "昌乐县政府",
                            "template_id": "1234567", "hook_token": TENCENT_TOKEN,
                            "hook_token_previous": PREVIOUS_TOKEN},
            "sms-aliyun-off": {"kind": "sms", "type": "aliyun_sms", "order": 2, "access_key_id": "LTAI-test-id",
                               "access_key_secret": "s", "sign_name": "昌乐县政府", "template_code": "SMS_100000001"},
            "sms-ha": {"kind": "sms", "type": "failover", "order": 3, "aliases": ["sms-tencent", "sms-aliyun"]},
            "wechat": {"kind": "wechat", "type": "outbox"},  # loadable by a process without an engine
        },
    })


@dataclass
class Hook:
    base: str
    session: aiohttp.ClientSession
    store: Store
    settings: Settings
    engine: Engine  # sends; also the app's running engine unless the app has none
    sms: RecordingChannel
    vendor: Vendor

    async def push(self, body: Any, *, token: str | None = None, alias: str | None = None) -> tuple[int, str, Any]:
        params = {"alias": self.vendor.alias if alias is None else alias,
                  "token": self.vendor.token if token is None else token}
        data = body if isinstance(body, bytes | io.BytesIO) else json.dumps(body, ensure_ascii=False).encode()
        async with self.session.post(f"{self.base}{self.vendor.path}", params=params, data=data,
                                     headers={"Content-Type": "application/json;charset=utf-8"}) as response:
            text = await response.text()
            parsed = json.loads(text) if response.content_type.endswith("json") else text
            return response.status, response.content_type, parsed

    async def sent(self, provider_id: str, state: str = "sent") -> int:
        """A resident (SMS first, then WeChat) sent one notice by SMS, the platform answering ``provider_id``."""
        await resident(self.store, VILLAGE_A1, phone=PHONE, wechat_openid=OPENID, channels=["sms", "wechat"])
        self.sms.plan(PHONE, Sent(provider_id))
        notice = await approved(self.store, channels=["sms", "wechat"])
        await self.engine.run_until_idle()
        [row] = await delivery_rows(self.store, notice.id)
        assert (row["state"], row["alias"], row["provider_message_id"]) == (state, self.sms.alias, provider_id)
        return notice.id

    async def receipts(self) -> list[tuple[Any, ...]]:
        query = "SELECT delivery_id, alias, provider_message_id, status, detail FROM receipts ORDER BY id"
        return await read_rows(self.settings.database.url, query)


async def start(tmp_path: Path, vendor: Vendor, *, sends_through: str, running_engine: bool) -> AsyncIterator[Hook]:
    settings = channel_settings(database_url(tmp_path, "cloud-sms-hooks.db"))
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed(store)
    sms = RecordingChannel(sends_through)
    engine = Engine(store, settings, {sends_through: sms, "wechat": RecordingChannel("wechat")}, clock=FakeClock(),
                    jitter=lambda: 0.5)

    async def engine_factory(app: object) -> Engine | None:
        return engine if running_engine else None

    server = TestServer(create_app(settings, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Hook(str(server.make_url("")).rstrip("/"), session, store, settings, engine, sms, vendor)
    finally:
        await server.close()
        await db.close()


@pytest.fixture(params=[ALIYUN, TENCENT], ids=lambda v: v.name)
async def hook(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hook]:
    async for h in start(tmp_path, request.param, sends_through=request.param.alias, running_engine=True):
        yield h


@pytest.fixture(params=[ALIYUN, TENCENT], ids=lambda v: v.name)
async def bare_hook(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hook]:
    """The API without a running engine (an API node)."""
    async for h in start(tmp_path, request.param, sends_through=request.param.alias, running_engine=False):
        yield h


@pytest.fixture(params=[ALIYUN, TENCENT], ids=lambda v: v.name)
async def failover_hook(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hook]:
    """Deliveries go out under the failover alias ``sms-ha``, whose members are both platforms."""
    async for h in start(tmp_path, request.param, sends_through="sms-ha", running_engine=True):
        yield h


def state_of(rows: list[dict[str, Any]], channel: str) -> list[str]:
    return [row["state"] for row in rows if row["channel"] == channel]


# --- options -------------------------------------------------------------------------------------------------------


def test_hook_token_is_an_optional_secret_option() -> None:
    settings = channel_settings("sqlite:///unused.db")
    aliyun = AliyunSmsOptions.model_validate(settings.channels["sms-aliyun"].options)
    tencent = TencentSmsOptions.model_validate(settings.channels["sms-tencent"].options)
    assert aliyun.hook_token is not None and aliyun.hook_token.get_secret_value() == ALIYUN_TOKEN
    assert tencent.hook_token is not None and ALIYUN_TOKEN not in repr(tencent)
    assert AliyunSmsOptions.model_validate(settings.channels["sms-aliyun-off"].options).hook_token is None


# --- delivered / failed --------------------------------------------------------------------------------------------


async def test_success_report_marks_the_delivery_delivered(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    notice_id = await hook.sent(hook.vendor.provider_id)
    caplog.set_level(logging.DEBUG, logger="notifier")

    status, content_type, body = await hook.push([hook.vendor.report(hook.vendor.provider_id)])

    assert (status, content_type, body) == (200, "application/json", hook.vendor.answer)
    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["delivered"]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("notifier"))
    assert hook.vendor.provider_id in logged
    assert hook.vendor.token not in logged and "13800138000" not in logged


async def test_failure_report_fails_the_sms_and_falls_back_to_wechat(hook: Hook) -> None:
    notice_id = await hook.sent(hook.vendor.provider_id)

    status, _, body = await hook.push([hook.vendor.report(hook.vendor.provider_id, success=False)])

    assert (status, body) == (200, hook.vendor.answer)
    rows = await delivery_rows(hook.store, notice_id)
    [sms] = [row for row in rows if row["channel"] == "sms"]
    assert sms["state"] == "fallback"
    assert hook.vendor.failure_text in (sms["last_error"] or "")
    assert state_of(rows, "wechat") == ["queued"]


async def test_failure_on_an_api_node_falls_back_to_wechat_too(bare_hook: Hook) -> None:
    """An API node (no engine in its process) hands the resident to the next channel as a worker would."""
    notice_id = await bare_hook.sent(bare_hook.vendor.provider_id)

    status, _, body = await bare_hook.push([bare_hook.vendor.report(bare_hook.vendor.provider_id, success=False)])

    assert (status, body) == (200, bare_hook.vendor.answer)
    rows = await delivery_rows(bare_hook.store, notice_id)
    assert state_of(rows, "sms") == ["fallback"]
    assert state_of(rows, "wechat") == ["queued"]


async def test_one_push_carries_several_reports(hook: Hook) -> None:
    notice_id = await hook.sent(hook.vendor.provider_id)
    push = [
        hook.vendor.report("1000000000000000001^0"),  # someone else's message: kept, harmless
        {"no": "id at all"},  # skipped
        "not an object",  # skipped
        hook.vendor.report(hook.vendor.provider_id),
    ]

    assert (await hook.push(push))[::2] == (200, hook.vendor.answer)
    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["delivered"]


async def test_a_member_of_a_failover_finds_the_failover_delivery(failover_hook: Hook) -> None:
    h = failover_hook
    notice_id = await h.sent(h.vendor.provider_id)

    assert (await h.push([h.vendor.report(h.vendor.provider_id)]))[::2] == (200, h.vendor.answer)

    assert state_of(await delivery_rows(h.store, notice_id), "sms") == ["delivered"]
    # one receipt, the delivery's: none kept unmatched under the member alias it was looked for first
    assert [(d is not None, a, s) for d, a, _, s, _ in await h.receipts()] == [(True, "sms-ha", "delivered")]


# --- unknown, early and repeated receipts --------------------------------------------------------------------------


async def test_unknown_ids_are_kept_and_harmless(hook: Hook) -> None:
    assert (await hook.push([hook.vendor.report("unknown-17")]))[::2] == (200, hook.vendor.answer)
    # kept once for a send not yet recorded, under the alias it came in on (not again for the failover alias
    # sending through it: the record of a send through the failover looks under its members too)
    assert [(d, a, p, s) for d, a, p, s, _ in await hook.receipts()] == [
        (None, hook.vendor.alias, "unknown-17", "delivered")
    ]


async def test_a_receipt_that_overtakes_its_send_is_applied_when_the_send_is_recorded(hook: Hook) -> None:
    assert (await hook.push([hook.vendor.report(hook.vendor.provider_id)]))[::2] == (200, hook.vendor.answer)

    await hook.sent(hook.vendor.provider_id, state="delivered")  # applied as the send is recorded


async def test_a_receipt_that_overtakes_a_send_through_a_failover_is_kept_once_and_applied(
    failover_hook: Hook,
) -> None:
    """The member's report comes before the failover's record of the send: one receipt row, the member's,
    attached to the failover delivery when its send is recorded; no unmatched row left behind."""
    h = failover_hook
    assert (await h.push([h.vendor.report(h.vendor.provider_id)]))[::2] == (200, h.vendor.answer)
    assert [(d, a) for d, a, _, _, _ in await h.receipts()] == [(None, h.vendor.alias)]

    await h.sent(h.vendor.provider_id, state="delivered")  # applied as the failover's send is recorded
    [(delivery_id, alias, provider_id, status, _)] = await h.receipts()
    assert (delivery_id is not None, alias, provider_id, status) == (True, h.vendor.alias, h.vendor.provider_id,
                                                                     "delivered")  # fmt: skip


async def test_repeated_receipts_are_harmless(hook: Hook) -> None:
    notice_id = await hook.sent(hook.vendor.provider_id)
    delivered = [hook.vendor.report(hook.vendor.provider_id)]

    for _ in range(3):  # Aliyun pushes again when it did not hear the answer
        assert (await hook.push(delivered))[::2] == (200, hook.vendor.answer)
    late_failure = [hook.vendor.report(hook.vendor.provider_id, success=False)]
    assert (await hook.push(late_failure))[::2] == (200, hook.vendor.answer)

    rows = await delivery_rows(hook.store, notice_id)
    assert state_of(rows, "sms") == ["delivered"] and state_of(rows, "wechat") == []
    assert [s for _, _, _, s, _ in await hook.receipts()] == ["delivered"]


async def test_a_report_naming_no_message_leaves_a_send_recorded_without_an_id_alone(hook: Hook) -> None:
    """Older versions recorded an OK answered without BizId / SerialNo as "None": a report with that id (or one
    whose id is not a string nor an integer) names no message, and must not confirm or fail that send. (The engine
    records no such id today, and migration 033 clears them: the send is given it behind its back.)"""
    notice_id = await hook.sent("gw-1")
    await run_sql(hook.store.db, "UPDATE deliveries SET provider_message_id = 'None' WHERE notice_id = ?", (notice_id,))
    id_field = "biz_id" if hook.vendor.name == "aliyun" else "sid"
    push = [{**hook.vendor.report("x", success=False), id_field: value} for value in ("None", True, ["None"])]

    assert (await hook.push(push))[::2] == (200, hook.vendor.answer)

    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["sent"]
    assert await hook.receipts() == []


# --- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "query"),
    [
        ("wrong token", {"token": "wrong"}),
        ("empty token", {"token": ""}),
        ("no alias", {"alias": ""}),
        ("unknown alias", {"alias": "nosuch"}),
        ("same type, no hook token", {"alias": "sms-aliyun-off"}),
        ("another platform's alias", {"alias": "other"}),
        ("another platform's alias and token", {"alias": "other", "token": "other"}),
        ("a failover alias", {"alias": "sms-ha"}),
    ],
)
async def test_wrong_token_or_alias_is_a_403_problem(hook: Hook, case: str, query: dict[str, str]) -> None:
    other = OTHER[hook.vendor.name]
    if query.get("alias") == "other":
        query = {**query, "alias": other.alias}
    if query.get("token") == "other":
        query = {**query, "token": other.token}
    status, content_type, body = await hook.push([hook.vendor.report("x")], **query)
    assert (status, content_type) == (403, "application/problem+json"), case
    assert body["type"] == "/problems/forbidden"
    assert hook.vendor.token not in json.dumps(body)
    assert await hook.receipts() == []


async def test_the_previous_token_is_taken_while_a_rotation_is_under_way(hook: Hook) -> None:
    """The platform's console keeps the old receipt URL until someone changes it there: with the alias's
    ``hook_token_previous`` set to the old token, its pushes are taken meanwhile (Kannel's hooks do the same)."""
    notice_id = await hook.sent(hook.vendor.provider_id)
    status, _, body = await hook.push([hook.vendor.report(hook.vendor.provider_id)], token=PREVIOUS_TOKEN)
    assert (status, body) == (200, hook.vendor.answer)
    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["delivered"]
    status, _, _ = await hook.push([hook.vendor.report(hook.vendor.provider_id)], token=PREVIOUS_TOKEN + "x")
    assert status == 403


async def test_a_missing_token_is_403(hook: Hook) -> None:
    async with hook.session.post(f"{hook.base}{hook.vendor.path}", params={"alias": hook.vendor.alias},
                                 json=[hook.vendor.report("x")]) as response:
        assert response.status == 403


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"biz_id": "1", "sid": "1"}', b'"a string"', b"null", b"12", b"[1, 2", b"\xff\xfe[]",
     b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "text", "object", "string", "null", "number", "truncated", "not-utf8", "deep"],
)
async def test_malformed_json_is_a_400_problem(hook: Hook, body: bytes) -> None:
    status, content_type, problem = await hook.push(body)
    assert (status, content_type) == (400, "application/problem+json")
    assert problem["type"] == "/problems/bad-request"


async def test_an_oversized_push_is_413(hook: Hook) -> None:
    status, _, problem = await hook.push(io.BytesIO(b"[" + b" " * (1024 * 1024) + b"]"))
    assert status == 413 and problem["type"] == "/problems/too-large"


# --- never a 500 ---------------------------------------------------------------------------------------------------


FUZZ: list[Any] = [
    [],
    [{}],
    [None, True, 1.5, [], {}],
    [{"biz_id": None, "sid": None}],
    [{"biz_id": "", "sid": ""}],
    [{"biz_id": "x" * 5000, "sid": "x" * 5000}],
    [{"biz_id": {"a": 1}, "sid": ["a"], "success": [1], "report_status": {"x": 1}}],
    [{"biz_id": 12345, "sid": 12345, "success": "yes", "report_status": 1, "err_code": None, "errmsg": 7}],
    [{"biz_id": "  ", "sid": "  "}],
    [{"biz_id": "\u0000\ud7ff\U0001f600", "sid": "\u0000\U0001f600", "err_msg": "\u202e" * 1000}],
    [{"biz_id": "1^0", "sid": "1:1", "err_msg": "e" * 100_000, "description": "d" * 100_000}],
    [{"biz_id": f"{i}^0", "sid": f"{i}:0"} for i in range(300)],
]


@pytest.mark.parametrize("body", FUZZ, ids=range(len(FUZZ)))
async def test_odd_pushes_never_get_a_500(hook: Hook, body: Any) -> None:
    status, _, answer = await hook.push(body)
    assert status == 200 and answer == hook.vendor.answer
    for delivery_id, _, message_id, _, detail in await hook.receipts():
        assert delivery_id is None and 0 < len(message_id.strip()) <= 128 and len(detail or "") <= 200


async def test_lone_surrogates_in_a_push_do_not_hold_back_its_other_reports(hook: Hook) -> None:
    """JSON may escape a lone surrogate, which no database can store: an id holding one is no id of ours and is
    skipped, a detail keeps U+FFFD in its place; the push is taken, not answered 503 for the platform to repeat."""
    notice_id = await hook.sent(hook.vendor.provider_id)
    id_field = "biz_id" if hook.vendor.name == "aliyun" else "sid"
    detail_field = "err_msg" if hook.vendor.name == "aliyun" else "description"
    odd = json.dumps({**hook.vendor.report("1^0"), id_field: "1^0\ud800"})  # json.dumps writes it as \ud800
    failed = {**hook.vendor.report(hook.vendor.provider_id, success=False), detail_field: "\udfff"}
    push = f"[{odd}, {json.dumps(failed)}]".encode()

    assert (await hook.push(push))[::2] == (200, hook.vendor.answer)
    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["fallback"]
    [(delivery_id, _, provider_id, status, detail)] = await hook.receipts()
    assert (delivery_id is not None, provider_id, status) == (True, hook.vendor.provider_id, "failed")
    assert "\ufffd" in detail


async def test_other_methods_are_not_routed(hook: Hook) -> None:
    async with hook.session.get(f"{hook.base}{hook.vendor.path}", params={"alias": hook.vendor.alias,
                                                                          "token": hook.vendor.token}) as response:
        assert response.status == 405


async def test_a_store_failure_is_a_503_so_the_platform_pushes_again(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(hook.store, "find_delivery_by_provider_id", broken)
    status, content_type, problem = await hook.push([hook.vendor.report(hook.vendor.provider_id)])
    assert (status, content_type) == (503, "application/problem+json")
    assert problem["type"] == "/problems/unavailable"


async def test_a_push_arriving_in_several_chunks_is_read_whole(hook: Hook) -> None:
    notice_id = await hook.sent(hook.vendor.provider_id)
    raw = json.dumps([hook.vendor.report(f"other-{i}") for i in range(200)] + [hook.vendor.report(
        hook.vendor.provider_id)], ensure_ascii=False).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 1000):
            yield raw[start:start + 1000]
            await asyncio.sleep(0)

    async with hook.session.post(f"{hook.base}{hook.vendor.path}", data=chunks(),
                                 params={"alias": hook.vendor.alias, "token": hook.vendor.token}) as response:
        assert (response.status, await response.json()) == (200, hook.vendor.answer)
    assert state_of(await delivery_rows(hook.store, notice_id), "sms") == ["delivered"]
