"""No 5xx for anything a user can send, in general: hypothesis drives the real app in-process.

Every answer below 500; every answer of the JSON API either JSON or a problem document. One server per
test (the fixture's), many requests: state built up by earlier examples only makes later ones more varied.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TOWN_A, VILLAGE_A1, Api
from tests.properties import FEW, integers, json_values, texts
from tests.properties.test_input_properties import FIELD_VALUES

ID_PATHS = [
    ("GET", "/api/v1/subscribers/{}"),
    ("PATCH", "/api/v1/subscribers/{}"),
    ("DELETE", "/api/v1/subscribers/{}"),
    ("GET", "/api/v1/notices/{}"),
    ("GET", "/api/v1/notices/{}/deliveries"),
    ("GET", "/api/v1/notices/{}/preview"),
    ("POST", "/api/v1/notices/{}/submit"),
    ("POST", "/api/v1/notices/{}/approve"),
    ("POST", "/api/v1/notices/{}/reject"),
    ("POST", "/api/v1/notices/{}/cancel"),
    ("POST", "/api/v1/apikeys/{}/revoke"),
]
LISTS = [
    "/api/v1/subscribers",
    "/api/v1/notices",
    "/api/v1/topics",
    "/api/v1/groups",
    "/api/v1/areas",
    "/api/v1/apikeys",
]
QUERY_NAMES = ["cursor", "limit", "area", "group", "topic", "state", "department", "token", "unknown"]
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/notices": {
        "topic": "air-quality",
        "title": "t",
        "body": "b",
        "target": {"areas": [TOWN_A]},
        "channels": ["sms"],
    },
    "/api/v1/subscribers": {"name": "张三", "phone": "13900001111", "area_code": VILLAGE_A1, "channels": ["sms"]},
    "/api/v1/topics": {"code": "water", "name": "供水"},
    "/api/v1/groups": {"code": "veterans", "name": "退役军人"},
    "/api/v1/areas": {"code": f"{TOWN_A}900", "name": "新村"},
}
ids = st.one_of(integers().map(str), texts(12), st.sampled_from(["1", "²", "①", "１", "١", "0", "-1", "1e3"]))
query_values = st.one_of(texts(30), integers().map(str), *[FIELD_VALUES[n].map(str) for n in ("cursor", "limit")])


def assert_no_server_error(method: str, path: str, status: int, answer: Any) -> None:
    assert status < 500, (method, path, answer)
    if path.startswith("/api/") and status != 204:
        assert isinstance(answer, dict), (method, path, status, answer)


def with_changes(valid: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {**valid, **changes}


@FEW
@given(
    route=st.sampled_from(ID_PATHS),
    id_text=ids,
    body=st.one_of(st.none(), json_values()),
    key=st.sampled_from(["env-admin", "env-issuer", "env-approver", "env-viewer", None]),
)
async def test_any_id_and_body_on_the_id_routes(
    api: Api, route: tuple[str, str], id_text: str, body: Any, key: str | None
) -> None:
    method, template = route
    path = template.format(quote(id_text, safe=""))
    status, answer = await api.call(method, path, key=key, json=body)
    assert_no_server_error(method, path, status, answer)


@FEW
@given(path=st.sampled_from(LISTS), query=st.dictionaries(st.sampled_from(QUERY_NAMES), query_values, max_size=4))
async def test_any_query_on_the_lists(api: Api, path: str, query: dict[str, str]) -> None:
    encoded = "&".join(
        f"{quote(name)}={quote(value, safe='', errors='surrogatepass')}" for name, value in query.items()
    )
    status, answer = await api.call("GET", f"{path}?{encoded}", key="env-admin")
    assert_no_server_error("GET", path, status, answer)


@FEW
@given(path=st.sampled_from(sorted(BODIES)), data=st.data())
async def test_any_body_the_models_may_see(api: Api, path: str, data: st.DataObject) -> None:
    valid = BODIES[path]
    names = st.sampled_from([*valid, *FIELD_VALUES, "target", "severity", "channels", "quiet_hours", "language"])
    changes = data.draw(st.dictionaries(names, st.one_of(json_values(), *FIELD_VALUES.values()), max_size=4))
    body = with_changes(valid, changes)
    raw = json.dumps(body, ensure_ascii=data.draw(st.booleans()))
    status, answer = await api.call(
        "POST", path, key="env-admin", data=raw.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert_no_server_error("POST", path, status, answer)


header_bytes = st.binary(max_size=60).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))


@FEW
@given(
    authorization=st.one_of(header_bytes, header_bytes.map(lambda raw: b"Bearer " + raw)),
    idempotency=st.one_of(st.none(), header_bytes),
    other=header_bytes,
    key_suffix=st.one_of(st.just(b""), header_bytes),
)
async def test_any_header_bytes(
    api: Api, authorization: bytes, idempotency: bytes | None, other: bytes, key_suffix: bytes
) -> None:
    body = json.dumps(BODIES["/api/v1/notices"]).encode()
    for auth in (authorization, b"Bearer " + api.keys["env-issuer"].encode() + key_suffix):
        head = (
            b"POST /api/v1/notices HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\nX-Other: " + other + b"\r\n"
        )
        if idempotency is not None:
            head += b"Idempotency-Key: " + idempotency + b"\r\n"
        head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        status = await raw_status(api, head + b"Connection: close\r\n\r\n" + body)
        assert status < 500, (auth, idempotency, other)


async def raw_status(api: Api, request: bytes) -> int:
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(answer.split(b" ", 2)[1])


@FEW
@given(
    token=st.one_of(texts(80), st.text(alphabet="ABCabc012-_.", max_size=120)), method=st.sampled_from(["GET", "POST"])
)
async def test_any_unsubscribe_token(api: Api, token: str, method: str) -> None:
    path = "/unsubscribe?token=" + quote(token, safe="", errors="surrogatepass")
    status, answer = await api.call(method, path, key=None, data={"List-Unsubscribe": "One-Click"})
    assert status in (200, 400, 403), (token, answer)


form_values = st.one_of(texts(40), st.sampled_from(["370725001036", "13900001111", "air-quality", "on", "123456"]))


@FEW
@given(
    path=st.sampled_from(["/subscribe", "/subscribe/confirm"]),
    form=st.dictionaries(
        st.sampled_from(["area", "name", "phone", "topics", "consent", "form_token", "request", "code", "x"]),
        form_values,
        max_size=6,
    ),
    query=st.dictionaries(st.sampled_from(["area", "topic"]), form_values, max_size=2),
)
async def test_any_form_on_the_resident_pages(api: Api, path: str, form: dict[str, str], query: dict[str, str]) -> None:
    encoded = "&".join(f"{name}={quote(value, safe='', errors='surrogatepass')}" for name, value in query.items())
    status, _ = await api.call("GET", f"/subscribe?{encoded}", key=None)
    assert status < 500, query
    body = "&".join(f"{name}={quote(value, safe='', errors='surrogatepass')}" for name, value in form.items()).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = await api.call("POST", path, key=None, data=body, headers=headers)
    assert status < 500 or status == 503, (path, form)  # 503: no SMS channel runs in this test's app
