"""The Aliyun SMS adapter: the RPC signature against Aliyun's own worked examples, sends against the fake
Dysms server (which verifies every signature), and SmsReport receipt parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from channels.aliyun_sms import (
    AliyunSmsChannel,
    AliyunSmsOptions,
    Receipt,
    aliyun_phone,
    aliyun_rpc_signature,
    parse_aliyun_receipts,
    percent_encode,
)
from channels.base import Failed, OutboundMessage, Retry, Sent
from tests.fake_aliyun import FakeAliyun

SIGN = "昌乐县政府"
NUMBERS = ["+8613800138001", "+8613800138002", "+8613800138003"]


def options(fake: FakeAliyun, **overrides: Any) -> AliyunSmsOptions:
    values = {
        "access_key_id": "LTAI-test-id",
        "access_key_secret": "test-secret",
        "sign_name": SIGN,
        "template_code": "SMS_100000001",
        "endpoint": fake.url,
        **overrides,
    }
    return AliyunSmsOptions.model_validate(values)


def message(i: int, recipient: str, text: str = f"【{SIGN}】明日有大风降温,请注意防范。") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i, notice_id=7, channel="sms", alias="sms-aliyun", recipient=recipient, text=text,
        idempotency_key=f"n7-s{i}-sms",
    )


def batch() -> list[OutboundMessage]:
    return [message(i, number) for i, number in enumerate(NUMBERS, start=1)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyun]:
    async with FakeAliyun() as server:
        yield server


@pytest.fixture
async def channel(fake: FakeAliyun) -> AsyncIterator[AliyunSmsChannel]:
    adapter = AliyunSmsChannel("sms-aliyun", options(fake))
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


# --- (1) the RPC signature, by the documented algorithm -------------------------------------------------------------


def test_signature_of_the_documented_sendsms_example() -> None:
    # The worked example of https://help.aliyun.com/document_detail/56189.html (GET, AccessKeySecret "testSecret").
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    # Steps 1-4: sort by name, percent-encode names and values (UTF-8, RFC 3986: 阿 -> %E9%98%BF, ":" -> %3A,
    # '{' -> %7B, '"' -> %22), join with "&" into the canonicalized query string:
    #   AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou
    #   &SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8
    #   &SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0
    #   &TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D
    #   &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25
    # Step 5: StringToSign = "GET" + "&" + percentEncode("/") + "&" + percentEncode(that string), so every "%" of
    # the canonical string is encoded again ("%3A" -> "%253A") and "=" / "&" become "%3D" / "%26":
    #   GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001
    #   %26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD
    #   %25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1
    #   %26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode
    #   %3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp
    #   %3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25
    # Step 6: Base64(HMAC-SHA1(key="testSecret&", StringToSign)); the documentation gives the result:
    assert aliyun_rpc_signature(params, "testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # The Signature parameter itself never takes part in the signature.
    with_signature = {**params, "Signature": "x"}
    assert aliyun_rpc_signature(with_signature, "testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_signature_of_the_documented_describe_regions_example() -> None:
    # The RPC signature page's example (ECS DescribeRegions, AccessKeySecret "testsecret"):
    #   StringToSign = GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML
    #     %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf
    #     %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26
    #   key "testsecret&" -> OLeaidS1JvxuMvnyHOwuJ+uX5qY=
    params = {
        "Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26", "SignatureVersion": "1.0",
    }
    assert aliyun_rpc_signature(params, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # The adapter POSTs: only the first word of StringToSign changes ("POST&%2F&..."), and with it the signature.
    assert aliyun_rpc_signature(params, "testsecret") != "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_rfc_3986_not_form_encoding() -> None:
    assert percent_encode("a b*c~d") == "a%20b%2Ac~d"
    assert percent_encode("+/=&") == "%2B%2F%3D%26"
    assert percent_encode("县") == "%E5%8E%BF"


def test_numbers_are_sent_in_the_documented_form() -> None:
    assert aliyun_phone("+8613800138000") == "13800138000"
    assert aliyun_phone("+85291234567") == "85291234567"


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValidationError):
        AliyunSmsOptions.model_validate(
            {"access_key_id": "a", "access_key_secret": "b", "sign_name": SIGN, "template_code": "T", "sign": "x"}
        )


# --- (2) sending through the fake server -----------------------------------------------------------------------------


async def test_a_batch_is_sent_one_signed_call_per_message(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    results = await channel.send(batch())

    assert [type(r) for r in results] == [Sent, Sent, Sent]
    by_number = {a.phone: a for a in fake.accepted}
    assert [r.provider_message_id for r in results if isinstance(r, Sent)] == [
        by_number[n.removeprefix("+86")].biz_id for n in NUMBERS
    ]
    received = sorted(fake.requests, key=lambda p: p["OutId"])
    assert [p["OutId"] for p in received] == ["n7-s1-sms", "n7-s2-sms", "n7-s3-sms"]
    assert {p["PhoneNumbers"] for p in received} == {"13800138001", "13800138002", "13800138003"}
    first = received[0]
    assert (first["Action"], first["SignName"], first["TemplateCode"]) == ("SendSms", SIGN, "SMS_100000001")
    # The platform adds 【签名】 itself: the template variable carries the text without it.
    assert json.loads(first["TemplateParam"]) == {"content": "明日有大风降温,请注意防范。"}
    assert len({p["SignatureNonce"] for p in received}) == 3


async def test_a_throttled_number_is_retried_alone(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    fake.throttled["13800138002"] = "触发分钟级流控Permits:1"
    results = await channel.send(batch())
    assert isinstance(results[0], Sent) and isinstance(results[2], Sent)
    assert results[1] == Retry("rate-limited", 60.0)


async def test_a_day_limit_waits_a_day(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    fake.throttled["13800138001"] = "触发天级流控Permits:10"
    assert await channel.send([message(1, NUMBERS[0])]) == [Retry("rate-limited", 86400.0)]


async def test_an_illegal_number_fails_only_that_message(
    channel: AliyunSmsChannel, fake: FakeAliyun, caplog: pytest.LogCaptureFixture
) -> None:
    fake.illegal.add("13800138003")
    caplog.set_level(logging.DEBUG)
    results = await channel.send([*batch(), message(4, "+86123")])

    assert isinstance(results[0], Sent) and isinstance(results[1], Sent)
    for failed in results[2:]:
        assert isinstance(failed, Failed) and failed.reason_code == "invalid-number"
    assert len(fake.accepted) == 2
    assert "13800138003" not in caplog.text and "test-secret" not in caplog.text


async def test_balance_exhausted_holds_every_message_and_alerts_once(
    channel: AliyunSmsChannel, fake: FakeAliyun, caplog: pytest.LogCaptureFixture
) -> None:
    fake.balance = 0
    first = await channel.send(batch())
    second = await channel.send(batch())

    assert first == second == [Retry("balance-exhausted", 3600.0)] * 3
    assert channel.account_alert == "balance-exhausted"
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    fake.balance = None  # topped up
    assert all(isinstance(r, Sent) for r in await channel.send(batch()))
    assert channel.account_alert is None


async def test_a_text_over_500_characters_is_not_sent(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    fits = message(1, NUMBERS[0], "长" * (500 - len(f"【{SIGN}】")))
    too_long = message(2, NUMBERS[1], "长" * (501 - len(f"【{SIGN}】")))
    results = await channel.send([fits, too_long])
    assert isinstance(results[0], Sent)
    assert isinstance(results[1], Failed) and results[1].reason_code == "too-long"
    assert len(fake.requests) == 1


async def test_http_5xx_is_retried(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    fake.http_errors = [503, 500]
    results = await channel.send(batch()[:2])
    assert sorted(r.reason for r in results if isinstance(r, Retry)) == ["http 500", "http 503"]
    assert fake.accepted == []


async def test_api_flow_control_is_retried(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    fake.api_throttled = 1
    assert await channel.send([message(1, NUMBERS[0])]) == [Retry("throttled")]


async def test_a_wrong_secret_is_refused_by_the_server(fake: FakeAliyun) -> None:
    adapter = AliyunSmsChannel("sms-aliyun", options(fake, access_key_secret="not-the-secret"))
    await adapter.open()
    try:
        results = await adapter.send(batch()[:1])
    finally:
        await adapter.close()
    assert isinstance(results[0], Failed) and results[0].reason_code == "auth"
    assert "SignatureDoesNotMatch" in results[0].detail
    assert fake.accepted == []


async def test_an_unapproved_template_is_a_config_failure(fake: FakeAliyun) -> None:
    adapter = AliyunSmsChannel("sms-aliyun", options(fake, template_code="SMS_999"))
    await adapter.open()
    try:
        [result] = await adapter.send(batch()[:1])
    finally:
        await adapter.close()
    assert isinstance(result, Failed) and result.reason_code == "config"


async def test_an_unreachable_gateway_is_retried(fake: FakeAliyun) -> None:
    adapter = AliyunSmsChannel("sms-aliyun", options(fake, endpoint="http://127.0.0.1:9/"))
    await adapter.open()
    try:
        [result] = await adapter.send(batch()[:1])
    finally:
        await adapter.close()
    assert isinstance(result, Retry) and result.reason.startswith("connection error")


# --- (3) delivery receipts ---------------------------------------------------------------------------------------


async def test_receipts_of_sent_messages_are_parsed(channel: AliyunSmsChannel, fake: FakeAliyun) -> None:
    results = await channel.send(batch())
    push = json.dumps(fake.receipts(failed={"13800138002"}), ensure_ascii=False).encode()

    receipts = {r.provider_message_id: r for r in parse_aliyun_receipts(push)}

    ids = [r.provider_message_id for r in results if isinstance(r, Sent)]
    assert [receipts[i].status for i in ids] == ["delivered", "failed", "delivered"]
    assert receipts[ids[1]].detail.startswith("MK:0001 用户关机")


def test_the_documented_receipt_example_is_parsed() -> None:
    body = (
        '[{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00",'
        '"success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"12345",'
        '"out_id":"67890"}, {"phone_number":"1381111****","success":false,"err_code":"MK:0001"}]'
    )
    assert parse_aliyun_receipts(body) == [
        Receipt("12345", "delivered", "DELIVERED 用户接收成功 2017-01-01 00:00:00")
    ]


def test_a_receipt_push_must_be_an_array() -> None:
    with pytest.raises(ValueError):
        parse_aliyun_receipts(b'{"biz_id": "1"}')
