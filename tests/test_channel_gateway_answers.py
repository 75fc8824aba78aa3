"""What the adapters make of answers a real gateway, or a broken proxy in front of it, can send.

A message is counted ``Sent`` (the resident counted as reached) only on an answer that says the provider took it;
an unreadable answer from a provider that may have taken the message is ``Retry``; nothing a gateway answers
makes an exception escape ``send``, hammers a token endpoint or keeps a token for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.aliyun_sms import AliyunSmsChannel, AliyunSmsOptions
from channels.base import Channel, Failed, OutboundMessage, Retry, SendResult, SendWindow, Sent, send_window
from channels.bulletin_cups import BulletinChannel
from channels.dingtalk_bot import DingtalkBotChannel
from channels.failover import CircuitState, FailoverChannel, FailoverOptions
from channels.feishu_bot import FeishuBotChannel
from channels.http import UNRECOGNISED
from channels.kannel import KannelChannel, KannelOptions
from channels.tencent_sms import TencentSmsChannel, TencentSmsOptions
from channels.wechat_official import WechatOfficialChannel, WechatOfficialOptions
from channels.wechat_token import MemoryTokenCache
from channels.wecom_app import WecomAppChannel, WecomAppOptions
from channels.wecom_bot import WecomBotChannel
from tests.fake_gateway import FakeGateway, Reply, fake_gateway
from tests.test_bulletin_render import VILLAGE, need_fonts
from tests.test_channel_bulletin import message as bulletin_message
from tests.test_channel_bulletin import options as bulletin_options

PHONE = "+8613800138000"
HTML_ERROR = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


def message(recipient: str = PHONE, delivery_id: int = 42, text: str = "明起三天减少户外活动。") -> OutboundMessage:
    return OutboundMessage(delivery_id, 7, "sms", "gw", recipient, text, f"n7-s{delivery_id}-x")


async def send(channel: Channel, batch: list[OutboundMessage]) -> list[SendResult]:
    await channel.open()
    try:
        return await channel.send(batch)
    finally:
        await channel.close()


def kannel(url: str) -> KannelChannel:
    options = {"url": f"{url}/cgi-bin/sendsms", "username": "u", "password": "pw-secret", "timeout": 2}
    return KannelChannel("kannel", KannelOptions.model_validate(options))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, HTML_ERROR),  # a proxy's error page with a success status
        Reply(200, ""),  # an empty body
        Reply(202, "Error: something unexpected"),
        Reply(200, '{"status": "ok"}'),  # not Kannel at all
    ],
)
async def test_kannel_success_status_with_an_unknown_body_is_not_counted_sent(reply: Reply) -> None:
    async with fake_gateway(reply) as gateway:
        [result] = await send(kannel(gateway.url), [message()])
    assert isinstance(result, Retry)
    assert "may have taken" in result.reason


@pytest.mark.parametrize("body", ["0: Accepted for delivery", "3: Queued for later delivery", "Sent."])
async def test_kannel_answers_that_say_it_took_the_message_are_sent(body: str) -> None:
    async with fake_gateway(Reply(202, body)) as gateway:
        [result] = await send(kannel(gateway.url), [message()])
    assert result == Sent("d42")


def wecom(url: str) -> WecomAppChannel:
    options = {"corpid": "ww1", "corpsecret": "corp-secret", "agentid": 1000002, "api_base": url, "timeout": 2}
    channel = WecomAppChannel("wecom", WecomAppOptions.model_validate(options))
    channel.tokens = MemoryTokenCache(channel.fetch_token, can_force=False)
    return channel


TOKEN = Reply(200, {"errcode": 0, "errmsg": "ok", "access_token": "tok-1", "expires_in": 7200})


@pytest.mark.parametrize(
    "answer",
    [
        {},  # a JSON object with nothing of WeCom's in it
        {"error": "upstream unavailable"},
        {"errcode": None},
        {"errcode": False, "msgid": "m1"},
        {"errcode": 0.5, "msgid": "m1"},
        '{"errcode": Infinity, "msgid": "m1"}',
    ],
)
async def test_wecom_answer_without_a_readable_errcode_is_not_sent(answer: dict[str, Any] | str) -> None:
    async with fake_gateway(TOKEN, Reply(200, answer)) as gateway:
        results = await send(wecom(gateway.url), [message("LiWei", 1), message("wangfang", 2)])
    assert all(isinstance(result, Retry) for result in results), results


def wechat(url: str) -> WechatOfficialChannel:
    options = {"appid": "wx1", "secret": "app-secret", "template_id": "tpl", "api_base": url, "timeout": 2}
    channel = WechatOfficialChannel("wechat", WechatOfficialOptions.model_validate(options))
    channel.tokens = MemoryTokenCache(channel.fetch_token)
    return channel


@pytest.mark.parametrize(
    "answer",
    [
        {"errcode": 0, "errmsg": "ok"},  # success without the msgid: the platform may well have taken it
        '{"errcode": Infinity, "msgid": 1}',
        {"errcode": True, "msgid": 1},
        {"errcode": 0.5, "msgid": 1},
    ],
)
async def test_wechat_answer_without_a_readable_outcome_is_retry(answer: dict[str, Any] | str) -> None:
    async with fake_gateway(Reply(200, {"access_token": "tok-1", "expires_in": 7200}), Reply(200, answer)) as gateway:
        [result] = await send(wechat(gateway.url), [message("oOPENID1")])
    assert isinstance(result, Retry), result


NO_MESSAGE_IDS = [None, "", "  ", "None", True, 1.5, [1], {"id": 1}]  # a success answer's id that names nothing
NO_ID_NAMES = ["null", "empty", "blank", "None", "boolean", "fraction", "list", "object"]


@pytest.mark.parametrize("msgid", NO_MESSAGE_IDS[1:], ids=NO_ID_NAMES[1:])  # null: see the test above
async def test_wechat_success_without_a_usable_msgid_is_not_sent(msgid: Any) -> None:
    answer = Reply(200, {"errcode": 0, "errmsg": "ok", "msgid": msgid})
    async with fake_gateway(Reply(200, {"access_token": "tok-1", "expires_in": 7200}), answer) as gateway:
        [result] = await send(wechat(gateway.url), [message("oOPENID1")])
    assert result == Retry(UNRECOGNISED)


@pytest.mark.parametrize("msgid", [*NO_MESSAGE_IDS, "missing"], ids=[*NO_ID_NAMES, "missing"])
async def test_wecom_success_without_a_usable_msgid_is_not_sent(msgid: Any) -> None:
    answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "invaliduser": "ghost"}
    if msgid != "missing":
        answer["msgid"] = msgid
    async with fake_gateway(TOKEN, Reply(200, answer)) as gateway:
        results = await send(wecom(gateway.url), [message("LiWei", 1), message("wangfang", 2), message("Ghost", 3)])
    assert results == [Retry(UNRECOGNISED), Retry(UNRECOGNISED), Failed("unreachable", "invaliduser")]


WECOM_STAFF = [message("LiWei", 1), message("Ghost", 2), message("ZhouQiang", 3)]


@pytest.mark.parametrize(
    ("invalid", "unlicensed"),
    [(["ghost"], ["zhouqiang"]), (["ghost", "nobody"], "zhouqiang"), (["ghost|nobody"], ["ZhouQiang "])],
    ids=["lists", "a list and a string", "lists of joined names"],
)
async def test_wecom_user_lists_sent_as_json_lists_are_read(invalid: list[str], unlicensed: list[str] | str) -> None:
    """Documented as "a|b" strings; proxies have been seen to hand them on as JSON lists."""
    answer = {"errcode": 0, "errmsg": "ok", "msgid": "m-1", "invaliduser": invalid, "unlicenseduser": unlicensed}
    async with fake_gateway(TOKEN, Reply(200, answer)) as gateway:
        results = await send(wecom(gateway.url), WECOM_STAFF)
    assert results == [Sent("m-1"), Failed("unreachable", "invaliduser"), Failed("unreachable", "unlicenseduser")]


@pytest.mark.parametrize("field", ["invaliduser", "unlicenseduser"])
@pytest.mark.parametrize("value", [["ghost", 2], [["ghost"]], {"ghost": 1}, 7, True], ids=str)
async def test_wecom_user_list_it_cannot_read_counts_no_one_sent(field: str, value: Any) -> None:
    """Who was refused cannot be told: no user of the call is counted as reached (the refused ones may be among
    them), and WeCom may have taken the message for the others."""
    answer = {"errcode": 0, "errmsg": "ok", "msgid": "m-1", field: value}
    async with fake_gateway(TOKEN, Reply(200, answer)) as gateway:
        results = await send(wecom(gateway.url), WECOM_STAFF)
    assert results == [Retry(UNRECOGNISED)] * len(WECOM_STAFF)


def token_fetches(gateway: FakeGateway) -> int:
    return sum(1 for seen in gateway.seen if seen.path.endswith(("/stable_token", "/gettoken")))


@pytest.mark.parametrize(
    ("make", "expires_in"),
    [
        (wechat, "-5"),
        (wechat, "NaN"),
        (wechat, '"two hours"'),
        (wechat, "[7200]"),
        (wecom, "-5"),
        (wecom, "NaN"),
        (wecom, '"two hours"'),
    ],
)
async def test_a_malformed_token_lifetime_neither_escapes_nor_refetches_on_every_send(
    make: Callable[[str], Channel], expires_in: str
) -> None:
    token = Reply(200, f'{{"errcode": 0, "access_token": "tok-1", "expires_in": {expires_in}}}')
    answer = Reply(200, {"errcode": 0, "errmsg": "ok", "msgid": "m1"})
    async with fake_gateway(token, answer) as gateway:
        channel = make(gateway.url)
        await channel.open()
        try:
            first = await channel.send([message("user1", 1)])
            second = await channel.send([message("user2", 2)])
        finally:
            await channel.close()
    assert first == second == [Sent("m1")]
    assert token_fetches(gateway) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("expires_in", ["1e300", "Infinity", "99999999999999999999999999"])
async def test_a_token_with_an_absurd_lifetime_is_not_kept_for_ever(expires_in: str) -> None:
    token = Reply(200, f'{{"access_token": "tok-1", "expires_in": {expires_in}}}')
    answer = Reply(200, {"errcode": 0, "errmsg": "ok", "msgid": 5})
    async with fake_gateway(token, token, answer) as gateway:
        clock = Clock()
        channel = wechat(gateway.url)
        channel.tokens = MemoryTokenCache(channel.fetch_token, clock=clock)
        await channel.open()
        try:
            await channel.send([message("user1", 1)])
            clock.now += 400 * 86400  # over a year later
            await channel.send([message("user2", 2)])
        finally:
            await channel.close()
    assert token_fetches(gateway) == 2


def tencent(url: str) -> TencentSmsChannel:
    values = {"secret_id": "AKID-test", "secret_key": "tc3-key", "sdk_app_id": "1400006666", "sign_name": "昌乐县政府",
              "template_id": "449739", "endpoint": url, "timeout": 2}  # fmt: skip
    return TencentSmsChannel("sms", TencentSmsOptions.model_validate(values))


def ok(number: str, serial: str) -> dict[str, str]:
    return {"PhoneNumber": number, "Code": "Ok", "SerialNo": serial}


@pytest.mark.parametrize("serial", [*NO_MESSAGE_IDS, "missing"], ids=[*NO_ID_NAMES, "missing"])
async def test_tencent_ok_without_a_usable_serial_number_is_not_sent(serial: Any) -> None:
    other = "+8613800138001"
    status: dict[str, Any] = {"PhoneNumber": PHONE, "Code": "Ok", "Fee": 1}
    if serial != "missing":
        status["SerialNo"] = serial
    answer = {"Response": {"SendStatusSet": [status, ok(other, "2028:f825de8f0747639f4100")], "RequestId": "r"}}
    async with fake_gateway(Reply(200, answer)) as gateway:
        results = await send(tencent(gateway.url), [message(PHONE, 1), message(other, 2)])
    assert results == [Retry(UNRECOGNISED), Sent("2028:f825de8f0747639f4100")]


def aliyun(url: str) -> AliyunSmsChannel:
    values = {"access_key_id": "LTAI-test-id", "access_key_secret": "test-secret", "sign_name": "昌乐县政府",
              "template_code": "SMS_100000001", "endpoint": url, "timeout": 2}  # fmt: skip
    return AliyunSmsChannel("sms-aliyun", AliyunSmsOptions.model_validate(values))


@pytest.mark.parametrize("biz_id", [*NO_MESSAGE_IDS, "missing"], ids=[*NO_ID_NAMES, "missing"])
async def test_aliyun_ok_without_a_usable_biz_id_is_not_sent(biz_id: Any) -> None:
    """Not even under the RequestId: it names the call, and no SmsReport ever carries it."""
    answer: dict[str, Any] = {"Code": "OK", "Message": "OK", "RequestId": "81E8736D-6A1E-4F0E-9CBB-7B6A4E7C1D3F"}
    if biz_id != "missing":
        answer["BizId"] = biz_id
    async with fake_gateway(Reply(200, answer)) as gateway:
        [result] = await send(aliyun(gateway.url), [message()])
    assert result == Retry(UNRECOGNISED)


@pytest.mark.parametrize("status_set", [7, True, 1.5])
async def test_tencent_status_set_of_the_wrong_shape_is_retry(status_set: Any) -> None:
    answer = {"Response": {"SendStatusSet": status_set, "RequestId": "r"}}
    async with fake_gateway(Reply(200, answer)) as gateway:
        results = await send(tencent(gateway.url), [message(PHONE, 1), message("+8613800138001", 2)])
    assert all(isinstance(result, Retry) for result in results), results


async def test_tencent_number_answered_twice_differently_is_not_sent() -> None:
    other = "+8613800138001"
    refused = {"PhoneNumber": PHONE, "Code": "FailedOperation.PhoneNumberInBlacklist", "SerialNo": ""}
    answer = {"Response": {"SendStatusSet": [refused, ok(other, "s2"), ok(PHONE, "s1")], "RequestId": "r"}}
    async with fake_gateway(Reply(200, answer)) as gateway:
        results = await send(tencent(gateway.url), [message(PHONE, 1), message(other, 2)])
    assert isinstance(results[0], Retry), results
    assert results[1] == Sent("s2")


@pytest.mark.parametrize("retry_after", ["315360000", "9" * 400, "Wed, 21 Oct 2125 07:28:00 GMT"])
async def test_an_absurd_retry_after_is_taken_for_a_day_at_most(retry_after: str) -> None:
    async with fake_gateway(Reply(429, "slow down", {"Retry-After": retry_after})) as gateway:
        [result] = await send(kannel(gateway.url), [message()])
    assert result == Retry("http 429", 86400.0)  # a day


@pytest.mark.parametrize(("cls", "field"), [(WecomBotChannel, "errcode"), (DingtalkBotChannel, "errcode"),
                                            (FeishuBotChannel, "code")])  # fmt: skip
async def test_robot_answer_with_a_boolean_code_is_not_sent(cls: type[Channel], field: str) -> None:
    async with fake_gateway(Reply(200, {field: False, "errmsg": "ok"})) as gateway:
        areas = {"370725001": f"{gateway.url}/robot/send?access_token=t-1"}
        channel = cls("bots", cls.Options.model_validate({"areas": areas}))
        [result] = await send(channel, [message("370725001", 1)])
    assert isinstance(result, Retry), result


IPP_CHARSET_ONLY = (  # IPP/2.0 successful-ok, request 1, an operation group with only attributes-charset
    b"\x02\x00\x00\x00\x00\x00\x00\x01\x01\x47\x00\x12attributes-charset\x00\x05utf-8\x03"
)


async def print_server(status: int, body: bytes, cut_off: bool = False) -> TestServer:
    """A print server on 127.0.0.1 answering every request with ``body`` (``cut_off``: half of it, then a close)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/ipp"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2] if cut_off else body)
        if cut_off:
            assert request.transport is not None
            request.transport.close()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


@pytest.mark.parametrize(
    ("status", "body", "cut_off"),
    [
        (503, "服务暂停，请稍后再试".encode("gbk"), False),  # an error page not in UTF-8
        (429, b"too many requests", False),
        (200, IPP_CHARSET_ONLY, False),  # accepted, but no job-id
        (200, IPP_CHARSET_ONLY, True),  # the answer cut off mid-body
    ],
    ids=["gbk-error-page", "429", "no-job-id", "cut-off"],
)
async def test_print_server_answers_that_say_nothing_clear_are_retry(
    status: int, body: bytes, cut_off: bool, tmp_path: Path
) -> None:
    need_fonts()
    server = await print_server(status, body, cut_off)
    try:
        printers = {VILLAGE: f"ipp://127.0.0.1:{server.port}/printers/BOARD"}
        [result] = await send(BulletinChannel("board", bulletin_options(tmp_path, printers)), [bulletin_message()])
    finally:
        await server.close()
    assert isinstance(result, Retry), result


def ipp_print_job_answer(*job_id: tuple[int, bytes]) -> bytes:
    """IPP/2.0 successful-ok answering request 1 with a job group holding ``job-id`` as the given (tag, value)s:
    the first named, the others additional values of it."""
    answer = IPP_CHARSET_ONLY[:-1] + b"\x02"
    for index, (tag, value) in enumerate(job_id):
        name = b"job-id" if index == 0 else b""
        answer += bytes([tag]) + len(name).to_bytes(2, "big") + name + len(value).to_bytes(2, "big") + value
    return answer + b"\x03"


@pytest.mark.parametrize(
    "job_id",
    [
        [(0x41, b"seventeen")],  # textWithoutLanguage
        [(0x21, (0).to_bytes(4, "big"))],  # 0: job-ids start at 1
        [(0x21, (17).to_bytes(4, "big")), (0x21, (18).to_bytes(4, "big"))],  # two values
        [(0x22, b"\x01")],  # a boolean
    ],
    ids=["text", "zero", "two-values", "boolean"],
)
async def test_print_job_accepted_without_a_usable_job_id_is_retry(
    job_id: list[tuple[int, bytes]], tmp_path: Path
) -> None:
    """A job-id that is not one integer names no job: ``poll_job`` could not ask for it."""
    need_fonts()
    server = await print_server(200, ipp_print_job_answer(*job_id))
    try:
        printers = {VILLAGE: f"ipp://127.0.0.1:{server.port}/printers/BOARD"}
        [result] = await send(BulletinChannel("board", bulletin_options(tmp_path, printers)), [bulletin_message()])
    finally:
        await server.close()
    assert result == Retry(UNRECOGNISED)


@pytest.mark.parametrize(
    ("body", "cut_off"),
    [(IPP_CHARSET_ONLY, True), ("页面错误".encode("gbk"), False)],
    ids=["cut-off", "gbk-error-page"],
)
async def test_polling_a_print_job_through_a_broken_answer_asks_again_later(body: bytes, cut_off: bool) -> None:
    server = await print_server(200 if cut_off else 502, body, cut_off)
    channel = BulletinChannel("board", bulletin_options(Path("unused")))
    await channel.open()
    try:
        state = await channel.poll_job(f"ipp://127.0.0.1:{server.port}/printers/BOARD#17")
    finally:
        await channel.close()
        await server.close()
    assert state == "pending"


async def test_messages_a_member_never_sent_do_not_open_its_circuit() -> None:
    options = FailoverOptions(aliases=["primary", "backup"], failure_threshold=3, window=60, cool_down=30)
    channel = FailoverChannel("sms", options)
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as primary, fake_gateway() as backup:
        members: dict[str, Channel] = {"primary": kannel(primary.url), "backup": kannel(backup.url)}
        channel.bind(members)
        for member in members.values():
            await member.open()
        token = send_window.set(SendWindow(deadline=asyncio.get_running_loop().time()))  # the time already ran out
        try:
            results = await channel.send([message(delivery_id=i) for i in range(20)])  # 8 connections
        finally:
            send_window.reset(token)
            for member in members.values():
                await member.close()
    sent = [result for result in results if isinstance(result, Sent)]
    assert sent and all(isinstance(r, Retry) and not r.started for r in results if not isinstance(r, Sent))
    assert len(sent) < len(results)  # some were never sent: the batch's time had run out
    assert channel.breakers["primary"].state is CircuitState.CLOSED
    assert len(backup.seen) == 0


@pytest.mark.parametrize("make", [tencent, wechat, wecom], ids=["tencent", "wechat", "wecom"])
async def test_json_nested_too_deep_to_parse_is_an_unreadable_answer(make: Callable[[str], Channel]) -> None:
    async with fake_gateway(Reply(200, "[" * 50_000)) as gateway:
        results = await send(make(gateway.url), [message("user1", 1)])
    assert [type(result) for result in results] == [Retry]
