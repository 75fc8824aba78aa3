"""Input that used to reach a 500: each case answers 4xx with a problem document naming the field."""

from __future__ import annotations

import asyncio
import base64
import json
import tokenize
from pathlib import Path
from typing import Any

import pytest

from notifier.config import Settings
from notifier.signing import sign
from tests.conftest import TOWN_A, Api

ROOT = Path(__file__).resolve().parents[1]
NOTICE: dict[str, Any] = {
    "topic": "air-quality",
    "title": "空气质量预警",
    "body": "明日重污染天气",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms"],
}


async def raw_request(api: Api, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (a client library would refuse or re-encode them); status and body."""
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def errors_of(answer: Any) -> list[str]:
    return [error["loc"] for error in answer["errors"]]


async def test_a_non_ascii_byte_in_the_api_key_is_unauthenticated(api: Api) -> None:
    key = api.keys["env-admin"].encode()
    for token in (key + b"\xff", key[:-1] + b"\xff", b"\xff", key.replace(b"_", b"_\xc3\xa9", 1)):
        status, body = await raw_request(
            api,
            b"GET /api/v1/topics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + token
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert status == 401, (token, body)
        assert json.loads(body)["type"] == "/problems/unauthenticated"


async def test_a_non_ascii_idempotency_key_is_refused_by_name(api: Api) -> None:
    key = api.keys["env-issuer"].encode()
    body = json.dumps(NOTICE).encode()
    status, answer = await raw_request(
        api,
        b"POST /api/v1/notices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + b"\r\n"
        b"Idempotency-Key: k\xff\xfe\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body,
    )
    assert status == 422, answer
    assert errors_of(json.loads(answer)) == ["header.Idempotency-Key"]


@pytest.mark.parametrize("digits", ["\u00b9", "\u2460", "\uff11", "\u0661", "1\u0662", "\u00b2\u00b3"])
async def test_only_ascii_digits_are_path_ids(api: Api, digits: str) -> None:
    for path in (f"/api/v1/subscribers/{digits}", f"/api/v1/notices/{digits}", f"/api/v1/notices/{digits}/deliveries"):
        status, answer = await api.call("GET", path, key="env-admin")
        assert status == 422, (path, answer)
        assert errors_of(answer) == ["path.id"]


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30, "\u0661", "1_000", " 5"])
async def test_a_cursor_beyond_the_store_s_integers_is_invalid(api: Api, value: object) -> None:
    cursor = base64.urlsafe_b64encode(f"id:{value}".encode()).decode().rstrip("=")
    for path in ("/api/v1/subscribers", "/api/v1/notices", "/api/v1/topics", "/api/v1/groups"):
        status, answer = await api.call("GET", f"{path}?cursor={cursor}", key="env-admin")
        assert status == 422, (path, answer)
        assert errors_of(answer) == ["query.cursor"]


async def test_the_largest_cursor_is_still_a_page(api: Api) -> None:
    cursor = base64.urlsafe_b64encode(f"id:{2**63 - 1}".encode()).decode().rstrip("=")
    status, answer = await api.call("GET", f"/api/v1/topics?cursor={cursor}", key="env-admin")
    assert status == 200, answer


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"references": 2**63}, "references"),
        ({"references": 10**30}, "references"),
        ({"target": {"subscribers": [2**63]}}, "target.subscribers.0"),
        ({"target": {"subscribers": [0]}}, "target.subscribers.0"),
    ],
)
async def test_ids_beyond_the_store_s_integers_are_refused(api: Api, change: dict[str, Any], field: str) -> None:
    status, answer = await api.call("POST", "/api/v1/notices", json={**NOTICE, **change})
    assert status == 422, answer
    assert errors_of(answer) == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("send_at", "9999-12-31T23:00:00-12:00"),
        ("expires_at", "9999-12-31T23:59:59-00:01"),
        ("send_at", "0001-01-01T00:00:00+05:00"),
        ("expires_at", "0001-01-01T03:00:00+14:00"),
    ],
)
async def test_times_that_leave_the_calendar_in_utc_are_refused(api: Api, field: str, value: str) -> None:
    status, answer = await api.call("POST", "/api/v1/notices", json={**NOTICE, field: value})
    assert status == 422, answer
    assert errors_of(answer) == [field]


async def test_the_calendar_s_last_hour_in_utc_is_accepted(api: Api) -> None:
    status, answer = await api.call("POST", "/api/v1/notices", json={**NOTICE, "expires_at": "9999-12-31T23:00:00Z"})
    assert status == 201, answer
    assert answer["expires_at"].startswith("9999-12-31T23:00:00")


def nested(kind: str, depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth if kind == "object" else "[" * depth + "]" * depth


@pytest.mark.parametrize("kind", ["object", "list"])
@pytest.mark.parametrize("depth", [33, 400, 700, 950, 5000])
async def test_deeply_nested_data_is_refused(api: Api, kind: str, depth: int) -> None:
    raw = json.dumps(NOTICE)[:-1] + ', "data": {"x": ' + nested(kind, depth) + "}}"
    status, answer = await api.call("POST", "/api/v1/notices", data=raw, headers={"Content-Type": "application/json"})
    assert status == 422, answer
    assert errors_of(answer) in (["data"], ["body"])


async def test_data_nested_to_the_documented_depth_is_kept(api: Api) -> None:
    raw = json.dumps(NOTICE)[:-1] + ', "data": {"x": ' + nested("object", 31) + "}}"
    status, answer = await api.call("POST", "/api/v1/notices", data=raw, headers={"Content-Type": "application/json"})
    assert status == 201, answer
    status, fetched = await api.call("GET", f"/api/v1/notices/{answer['id']}")
    assert status == 200 and fetched["data"] == answer["data"]


@pytest.mark.parametrize("claims", [{"s": 2**63}, {"s": 10**30}, {"s": 5, "n": 2**63}])
async def test_an_unsubscribe_token_with_a_huge_id_is_a_damaged_link(
    api: Api, settings: Settings, claims: dict[str, int]
) -> None:
    token = sign({"p": "unsub", "c": "email", **claims}, settings.security.signing_secret, 3600)
    for method in ("GET", "POST"):
        status, answer = await api.call(
            method, f"/unsubscribe?token={token}", key=None, data={"List-Unsubscribe": "One-Click"}
        )
        assert status == 400, (method, answer)
        assert answer["type"] == "/problems/bad-unsubscribe-request"


@pytest.mark.parametrize("value", ["1\u0661:00", "\u0661\u0660:00", "10:0\u0660", "1\uff11:00", "10:0\u00b9"])
async def test_quiet_hours_take_ascii_digits_only(api: Api, value: str) -> None:
    body = {
        "name": "张三",
        "phone": "13900001111",
        "area_code": "370725001036",
        "quiet_hours": {"start": value, "end": "07:00"},
    }
    status, answer = await api.call("POST", "/api/v1/subscribers", json=body, key="env-issuer")
    assert status == 422, answer
    assert errors_of(answer) == ["quiet_hours.start"]


@pytest.mark.parametrize("code", ["\uff13\uff17\uff10\uff17\uff12\uff15", "\u0663\u0667\u0660\u0667\u0662\u0665001"])
async def test_area_codes_take_ascii_digits_only(api: Api, code: str) -> None:
    status, answer = await api.call("GET", "/api/v1/subscribers", key="env-admin", params={"area": code})
    assert status == 422, answer
    assert errors_of(answer) == ["query.area"]


def test_no_unicode_digit_checks_remain_in_the_source() -> None:
    """``str.isdigit``/``isdecimal``/``isnumeric`` and ``\\d`` accept any script's digits: ids and codes are ASCII."""
    offenders = []
    for package in ("notifier", "channels", "subscribers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            with path.open("rb") as source:
                for token in tokenize.tokenize(source.readline):
                    lexeme = token.string
                    if token.type == tokenize.STRING and "\\d" in lexeme.replace("\\\\", ""):
                        offenders.append(f"{path.relative_to(ROOT)}:{token.start[0]} {lexeme[:40]}")
                    if token.type == tokenize.NAME and lexeme in ("isdigit", "isdecimal", "isnumeric"):
                        offenders.append(f"{path.relative_to(ROOT)}:{token.start[0]} {lexeme}")
    assert offenders == []


@pytest.mark.parametrize(
    ("change", "field"),
    [({"title": "预警\ud800"}, "title"), ({"body": "\udfff正文"}, "body"), ({"data": {"place": "村\ud83d"}}, "data")],
)
async def test_a_lone_surrogate_is_refused_by_name(api: Api, change: dict[str, Any], field: str) -> None:
    """JSON may escape half of a UTF-16 pair; no encoder can write it, so it never reaches the store."""
    raw = json.dumps({**NOTICE, **change})  # ensure_ascii: the surrogate travels as a \\ud800 escape
    status, answer = await api.call("POST", "/api/v1/notices", data=raw, headers={"Content-Type": "application/json"})
    assert status == 422, answer
    assert errors_of(answer) == [field]


async def test_a_resident_name_with_a_lone_surrogate_is_refused(api: Api) -> None:
    raw = json.dumps({"name": "张\udc00三", "phone": "13900001111", "area_code": "370725001036"})
    status, answer = await api.call(
        "POST", "/api/v1/subscribers", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 422, answer
    assert errors_of(answer) == ["name"]
