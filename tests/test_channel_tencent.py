"""The Tencent Cloud SMS adapter: TC3-HMAC-SHA256 against Tencent's worked example, sends against the fake
API (which verifies every signature), and status-callback parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.aliyun_sms import Receipt
from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.tencent_sms import (
    TencentSmsChannel,
    TencentSmsOptions,
    group_by_text,
    parse_tencent_callback,
    seconds_to_next_cn_day,
    tc3_authorization,
)
from tests.fake_tencent import FakeTencent

SIGN = "昌乐县政府"
NUMBERS = ["+8613800138001", "+8613800138002", "+8613800138003"]
ALERT = f"【{SIGN}】明日有大风降温,请注意防范。"


def options(fake: FakeTencent, **overrides: Any) -> TencentSmsOptions:
    values = {
        "secret_id": "AKID-test", "secret_key": "tc3-test-key", "sdk_app_id": "1400006666", "sign_name": SIGN,
        "template_id": "449739", "endpoint": fake.url, **overrides,
    }
    return TencentSmsOptions.model_validate(values)


def message(i: int, recipient: str, text: str = ALERT) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i, notice_id=7, channel="sms", alias="sms-tencent", recipient=recipient, text=text,
        idempotency_key=f"n7-s{i}-sms",
    )


def batch() -> list[OutboundMessage]:
    return [message(i, number) for i, number in enumerate(NUMBERS, start=1)]


def bodies(fake: FakeTencent) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in fake.requests]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTencent]:
    async with FakeTencent() as server:
        yield server


@pytest.fixture
async def channel(fake: FakeTencent) -> AsyncIterator[TencentSmsChannel]:
    adapter = TencentSmsChannel("sms-tencent", options(fake))
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


# --- (1) TC3-HMAC-SHA256, by the documented algorithm ---------------------------------------------------------------


def test_authorization_of_the_documented_example() -> None:
    # The worked example of the API 3.0 signature v3 page (https://cloud.tencent.com/document/api/213/30654):
    # CVM DescribeInstances, POST, SecretKey "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", X-TC-Timestamp 1551113065.
    payload = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    # Step 1, CanonicalRequest (method, URI "/", empty query for POST, lower-case headers each ending in "\n",
    # a blank line, SignedHeaders, lowercase hex SHA-256 of the payload bytes):
    #   POST
    #   /
    #
    #   content-type:application/json; charset=utf-8
    #   host:cvm.tencentcloudapi.com
    #
    #   content-type;host
    #   35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064
    # Step 2, StringToSign; the date is the UTC date of the timestamp (2019-02-25 16:44:25 UTC), not the
    # Beijing one (already 2019-02-26); the last line is SHA-256 of the CanonicalRequest:
    #   TC3-HMAC-SHA256
    #   1551113065
    #   2019-02-25/cvm/tc3_request
    #   5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031
    # Step 3, SecretDate = HMAC_SHA256("TC3" + SecretKey, "2019-02-25"), SecretService = HMAC_SHA256(SecretDate,
    # "cvm"), SecretSigning = HMAC_SHA256(SecretService, "tc3_request"),
    # Signature = hex(HMAC_SHA256(SecretSigning, StringToSign)); the page gives the result:
    headers = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm", "cvm.tencentcloudapi.com",
        payload, 1551113065, "DescribeInstances", "2017-03-12", "ap-guangzhou",
    )
    # Step 4, the Authorization header:
    assert headers["Authorization"] == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )
    assert headers == headers | {
        "Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com",
        "X-TC-Action": "DescribeInstances", "X-TC-Version": "2017-03-12", "X-TC-Timestamp": "1551113065",
        "X-TC-Region": "ap-guangzhou",
    }


def test_daily_limits_reset_at_midnight_in_china() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in UTC+8: 23 h 15 min 35 s to the next midnight there.
    assert seconds_to_next_cn_day(1551113065) == 23 * 3600 + 15 * 60 + 35


def test_identical_texts_share_calls_of_at_most_200_distinct_numbers() -> None:
    many = [message(i, f"+86138{i:08d}") for i in range(450)]
    assert [len(call) for call in group_by_text(many)] == [200, 200, 50]
    twice = [message(1, NUMBERS[0]), message(2, NUMBERS[0]), message(3, NUMBERS[1], "另一条")]
    assert group_by_text(twice) == [[0], [1], [2]]


# --- (2) sending through the fake server -----------------------------------------------------------------------------


async def test_one_text_to_many_numbers_is_one_signed_call(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    results = await channel.send(batch())

    assert results == [Sent(a.serial_no) for a in fake.accepted]
    [body] = bodies(fake)
    assert body["PhoneNumberSet"] == NUMBERS
    assert body["TemplateParamSet"] == ["明日有大风降温,请注意防范。"]  # the platform adds 【签名】
    assert (body["SmsSdkAppId"], body["SignName"], body["TemplateId"]) == ("1400006666", SIGN, "449739")
    assert body["SessionContext"] == "n7-s1-sms,n7-s2-sms,n7-s3-sms"
    assert fake.requests[0]["headers"]["X-TC-Region"] == "ap-guangzhou"


async def test_different_texts_go_in_separate_calls(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    results = await channel.send([message(1, NUMBERS[0], "甲"), message(2, NUMBERS[1], "乙")])
    assert all(isinstance(r, Sent) for r in results)
    assert sorted((b["SessionContext"], b["TemplateParamSet"][0]) for b in bodies(fake)) == [
        ("n7-s1-sms", "甲"), ("n7-s2-sms", "乙")
    ]


async def test_each_number_gets_its_own_result(
    channel: TencentSmsChannel, fake: FakeTencent, caplog: pytest.LogCaptureFixture
) -> None:
    fake.number_codes = {
        "+8613800138002": "InvalidParameterValue.IncorrectPhoneNumber",
        "+8613800138003": "LimitExceeded.PhoneNumberDailyLimit",
    }
    caplog.set_level(logging.DEBUG)
    results = await channel.send([*batch(), message(4, "+8613800138004"), message(5, "+8613800138005")])

    assert isinstance(results[0], Sent) and isinstance(results[3], Sent) and isinstance(results[4], Sent)
    assert isinstance(results[1], Failed) and results[1].reason_code == "invalid-number"
    assert isinstance(results[2], Retry) and results[2].reason == "rate-limited"
    assert [a.phone for a in fake.accepted] == ["+8613800138001", "+8613800138004", "+8613800138005"]
    assert "13800138002" not in caplog.text and "tc3-test-key" not in caplog.text


async def test_a_blocklisted_number_counts_as_opted_out(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    fake.number_codes["+8613800138001"] = "FailedOperation.PhoneNumberInBlacklist"
    [result] = await channel.send(batch()[:1])
    assert isinstance(result, Failed) and result.reason_code == "opted-out"


async def test_api_rate_limit_retries_the_whole_call(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    fake.request_errors = ["RequestLimitExceeded"]
    assert await channel.send(batch()) == [Retry("throttled")] * 3
    assert fake.accepted == []


async def test_an_empty_package_holds_every_message_and_alerts_once(
    channel: TencentSmsChannel, fake: FakeTencent, caplog: pytest.LogCaptureFixture
) -> None:
    fake.balance = 2
    first = await channel.send(batch())
    second = await channel.send(batch())

    assert first == second == [Retry("balance-exhausted", 3600.0)] * 3
    assert channel.account_alert == "balance-exhausted"
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    fake.balance = None
    assert all(isinstance(r, Sent) for r in await channel.send(batch()))
    assert channel.account_alert is None


async def test_http_5xx_is_retried(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    fake.http_errors = [502]
    assert await channel.send(batch()) == [Retry("http 502")] * 3


async def test_a_wrong_key_is_refused_by_the_server(fake: FakeTencent) -> None:
    adapter = TencentSmsChannel("sms-tencent", options(fake, secret_key="not-the-key"))
    await adapter.open()
    try:
        results = await adapter.send(batch())
    finally:
        await adapter.close()
    assert all(isinstance(r, Failed) and r.reason_code == "auth" for r in results)
    assert "AuthFailure.SignatureFailure" in results[0].detail  # type: ignore[union-attr]
    assert fake.accepted == []


async def test_an_unapproved_template_is_a_config_failure(fake: FakeTencent) -> None:
    adapter = TencentSmsChannel("sms-tencent", options(fake, template_id="1"))
    await adapter.open()
    try:
        [result] = await adapter.send(batch()[:1])
    finally:
        await adapter.close()
    assert isinstance(result, Failed) and result.reason_code == "config"


# --- (3) status callbacks ----------------------------------------------------------------------------------------


async def test_callbacks_of_sent_messages_are_parsed(channel: TencentSmsChannel, fake: FakeTencent) -> None:
    results = await channel.send(batch())
    push = json.dumps(fake.callback(failed={"+8613800138003"}), ensure_ascii=False)

    receipts = {r.provider_message_id: r for r in parse_tencent_callback(push)}

    ids = [r.provider_message_id for r in results if isinstance(r, Sent)]
    assert [receipts[i].status for i in ids] == ["delivered", "delivered", "failed"]
    assert receipts[ids[2]].detail.startswith("UNDELIV 用户短信未送达")


def test_the_documented_callback_example_is_parsed() -> None:
    body = (
        b'[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13xxxxxxxxx",'
        b'"report_status":"SUCCESS","errmsg":"DELIVRD","description":"\xe7\x94\xa8\xe6\x88\xb7\xe7\x9f\xad'
        b'\xe4\xbf\xa1\xe9\x80\x81\xe8\xbe\xbe\xe6\x88\x90\xe5\x8a\x9f","sid":"xxxxxxx"}]'
    )
    assert parse_tencent_callback(body) == [
        Receipt("xxxxxxx", "delivered", "DELIVRD 用户短信送达成功 2015-10-17 08:03:04")
    ]


def test_a_callback_must_be_an_array() -> None:
    with pytest.raises(ValueError):
        parse_tencent_callback('{"sid": "1"}')
