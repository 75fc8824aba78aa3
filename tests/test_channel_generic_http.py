"""The generic HTTP gateway and the shared HTTP layer, against fake gateways on 127.0.0.1:0."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from channels.base import Failed, OutboundMessage, Retry, SendResult, Sent
from channels.generic_http import GenericHttpChannel, GenericHttpOptions, lookup
from channels.http import UNRECOGNISED, parse_retry_after, redact
from tests.fake_gateway import Reply, fake_gateway

JSON_GATEWAY: dict[str, Any] = {
    "method": "POST",
    "url": "{{ base }}/api/send",
    "headers": {"Authorization": "Bearer {{ secrets.token }}"},
    "secrets": {"token": "tok-5ecret-99"},
    "body_template": '{"mobile": {{ to|tojson }}, "content": {{ text|tojson }}, "ref": {{ key|tojson }}}',
    "message_id_path": "data.msgid",
    "status_path": "code",
    "success_values": ["0"],
    "retry_values": ["1001"],
    "timeout": 0.5,
}


def message(text: str = "明天停水。", recipient: str = "+8613800138000") -> OutboundMessage:
    return OutboundMessage(9, 3, "sms", "gw", recipient, text, "n3-s9-sms")


async def send(base: str, options: dict[str, Any], msg: OutboundMessage | None = None) -> SendResult:
    values = {**options, "url": options["url"].replace("{{ base }}", base)}
    channel = GenericHttpChannel("gw", GenericHttpOptions.model_validate(values))
    await channel.open()
    try:
        [result] = await channel.send([msg or message()])
    finally:
        await channel.close()
    return result


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ([Reply(200, {"code": 0, "data": {"msgid": "M-1"}})], Sent("M-1")),
        ([Reply(200, {"code": "0"})], Sent("d9")),  # no id in the reply: ours
        ([Reply(200, {"code": 1001, "msg": "busy"})], Retry("gateway status 1001")),
        ([Reply(200, {"code": 2, "msg": "blacklisted"})], Failed("gateway-status", "2")),
        ([Reply(200, "<html>ok</html>")], Retry(UNRECOGNISED)),  # not the gateway's answer: it may have sent
        ([Reply(200, {"data": {"msgid": "M-1"}})], Retry(UNRECOGNISED)),
        ([Reply(200, {"code": None})], Retry(UNRECOGNISED)),
        ([Reply(200, {"code": True})], Failed("gateway-status", "true")),
        ([Reply(429, "slow down", {"Retry-After": "7"})], Retry("http 429", 7.0)),
        ([Reply(429, "slow down")], Retry("http 429")),
        ([Reply(500, "oops")], Retry("http 500")),
        ([Reply(502, "bad gateway", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})], Retry("http 502", 0.0)),
        ([Reply(400, {"error": "bad mobile"})], Failed("http-400", '{"error": "bad mobile"}')),
        ([Reply(401, "token=abc123 refused")], Failed("http-401", "token=*** refused")),
        ([Reply(hang=True)], Retry("timeout")),
    ],
)
async def test_reply_table(replies: list[Reply], expected: SendResult) -> None:
    async with fake_gateway(*replies) as gateway:
        assert await send(gateway.url, JSON_GATEWAY) == expected


@pytest.mark.parametrize(
    "msgid",
    ["", "  ", "None", True, 1.5, [1], {"id": 1}],
    ids=["empty", "blank", "None", "boolean", "fraction", "list", "object"],
)
async def test_a_value_at_the_id_path_that_names_no_message_is_replaced_by_ours(msgid: Any) -> None:
    """Recorded under its own "d<delivery id>", not under a value other sends could be recorded under too."""
    async with fake_gateway(Reply(200, {"code": 0, "data": {"msgid": msgid}})) as gateway:
        assert await send(gateway.url, JSON_GATEWAY) == Sent("d9")


async def test_scripted_sequence_429_500_timeout_then_200() -> None:
    script = [Reply(429, "", {"Retry-After": "2"}), Reply(500), Reply(hang=True), Reply(200, {"code": 0})]
    async with fake_gateway(*script) as gateway:
        results = [await send(gateway.url, JSON_GATEWAY) for _ in script]
    assert results == [Retry("http 429", 2.0), Retry("http 500"), Retry("timeout"), Sent("d9")]
    assert len(gateway.seen) == 4


async def test_request_is_rendered_from_the_templates() -> None:
    async with fake_gateway(Reply(200, {"code": 0, "data": {"msgid": 77}})) as gateway:
        options = {**JSON_GATEWAY, "signature": "昌乐县政府", "unsubscribe_text": "回TD退订"}
        assert await send(gateway.url, options, message('说"停水"\n')) == Sent("77")
    [seen] = gateway.seen
    assert (seen.method, seen.path) == ("POST", "/api/send")
    assert seen.headers["Authorization"] == "Bearer tok-5ecret-99"
    assert seen.headers["Content-Type"] == "application/json; charset=utf-8"
    assert seen.json() == {"mobile": "+8613800138000", "content": '【昌乐县政府】说"停水"回TD退订', "ref": "n3-s9-sms"}


async def test_form_gateway_over_get_with_query_templates() -> None:
    options = {"method": "GET", "url": "{{ base }}/send.do", "query": {"u": "county", "p": "{{ secrets.pw }}",
               "m": "{{ to }}", "c": "{{ text }}"}, "secrets": {"pw": "pw-77"}}
    async with fake_gateway(Reply(200, "OK")) as gateway:
        assert await send(gateway.url, options) == Sent("d9")
    assert dict(gateway.seen[0].query) == {"u": "county", "p": "pw-77", "m": "+8613800138000", "c": "明天停水。"}
    assert gateway.seen[0].body == b""


async def test_a_resend_with_no_id_in_the_reply_is_recorded_under_an_id_of_its_own() -> None:
    resent = OutboundMessage(9, 3, "sms", "gw", "+8613800138000", "明天停水。", "n3-s9-sms-r1", resend=1)
    async with fake_gateway(Reply(200, {"code": "0"})) as gateway:
        assert await send(gateway.url, JSON_GATEWAY, resent) == Sent("d9-r1")


async def test_template_error_sends_nothing() -> None:
    async with fake_gateway() as gateway:
        result = await send(gateway.url, {**JSON_GATEWAY, "body_template": "{{ nobody }}"})
    assert isinstance(result, Failed) and result.reason_code == "template-error"
    assert gateway.seen == []


async def test_connection_refused_is_retry() -> None:
    async with fake_gateway() as gateway:
        url = gateway.url
    result = await send(url, JSON_GATEWAY)
    assert isinstance(result, Retry) and result.reason == "connection error: ClientConnectorError"


async def test_logs_carry_no_secret_or_phone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    options = {**JSON_GATEWAY, "url": "{{ base }}/api/send?key={{ secrets.token }}&to={{ to }}"}
    async with fake_gateway(Reply(400, "bad number +8613800138000 for key tok-5ecret-99")) as gateway:
        result = await send(gateway.url, options)
    assert result == Failed("http-400", "bad number +86138****8000 for key ***")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("notifier")]  # not the fake's access log
    assert ours, "the refusal is logged"
    assert all("tok-5ecret-99" not in line and "13800138000" not in line for line in ours)


@pytest.mark.parametrize(
    ("options", "message_part"),
    [
        ({"url": "x", "body_template": "{% if %}"}, "not a valid template"),
        ({"url": "x", "method": "DELETE"}, "method"),
        ({"url": "x", "status": "code"}, "Extra inputs"),
        ({}, "url"),
    ],
)
def test_bad_options_fail_at_start_up(options: dict[str, Any], message_part: str) -> None:
    with pytest.raises(ValueError, match=message_part):
        GenericHttpOptions.model_validate(options)


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [({"a": {"b": [1, {"c": "x"}]}}, "a.b.1.c", "x"), ({"a": [5]}, "a.-1", 5), ({"a": [5]}, "a.1", None),
     ({"a": 1}, "a.b", None), (None, "a", None), ({"a": {"b": 0}}, "a.b", 0)],
)
def test_lookup(data: Any, path: str, expected: Any) -> None:
    assert lookup(data, path) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("password=hunter2&to=%2B8613800138000", [], "password=***&to=%2B86138****8000"),
        ("call 13912345678 or +85291234567", [], "call 139****5678 or +852****4567"),
        ("call 139 1234 5678 or +86 139-1234-5678", [], "call 139****5678 or +86 139****5678"),
        ('{"access_key": "AKID1", "sign": "zz"}', [], '{"access_key": "***", "sign": "***"}'),
        ("ts=1795961193 id=d42", [], "ts=1795961193 id=d42"),  # a Unix time is not a phone number
        ("Bearer s3cr3t-value", ["s3cr3t-value"], "Bearer ***"),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("120", 120.0), ("soon", None), ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
     ("Sun, 09 Sep 2001 02:46:40 GMT", 3600.0), ("Thu, 01 Jan 2099 00:00:00 GMT", 86400.0)],  # a day at most
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1_000_000_000.0) == expected
