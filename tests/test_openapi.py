"""The OpenAPI document describes the service: every answer it gives, every limit it enforces, every form."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from tests.conftest import TOWN_A, VILLAGE_A1, Api

JSON = "application/json"
NOTICE = {
    "topic": "air-quality",
    "title": "t",
    "body": "b",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms"],
}


async def _document(api: Api) -> dict[str, Any]:
    status, doc = await api.call("GET", "/openapi.json", key=None)
    assert status == 200
    assert isinstance(doc, dict)
    return doc


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The documented operation a concrete request path falls under."""
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return dict(item[method.lower()])
    raise AssertionError(f"{method} {path} is not in the document")


async def _answer(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    headers = dict(kwargs.pop("headers", {}))
    key = kwargs.pop("key", "env-admin")
    if key is not None:
        headers["Authorization"] = f"Bearer {api.keys[key]}"
    async with api.session.request(method, api.base + path, headers=headers, **kwargs) as resp:
        await resp.read()
        return resp.status, resp.content_type, dict(resp.headers)


async def _notice(api: Api) -> int:
    status, body = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 201, body
    return int(body["id"])


async def test_405_names_the_allowed_methods_in_a_problem_document(api: Api) -> None:
    status, media, headers = await _answer(api, "TRACE", "/api/v1/topics")
    assert status == 405
    assert media == "application/problem+json"
    assert sorted(m.strip() for m in headers["Allow"].split(",")) == ["GET", "POST"]
    status, _, headers = await _answer(api, "PUT", "/api/v1/subscribers/1")
    assert status == 405
    assert sorted(m.strip() for m in headers["Allow"].split(",")) == ["DELETE", "GET", "PATCH"]


async def test_a_json_body_of_another_media_type_is_415(api: Api) -> None:
    body = b'{"code": "water", "name": "x"}'
    status, media, _ = await _answer(
        api, "POST", "/api/v1/topics", data=body, headers={"Content-Type": "text/plain"}
    )
    assert (status, media) == (415, "application/problem+json")
    status, _, _ = await _answer(
        api, "POST", "/api/v1/topics", data=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert status == 201


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected"),
    [
        ("GET", "/api/v1/notices/999", {}, 404),
        ("GET", "/api/v1/notices/999/deliveries", {}, 404),
        ("GET", "/api/v1/notices/999/preview", {}, 404),
        ("POST", "/api/v1/notices/999/submit", {}, 404),
        ("POST", "/api/v1/notices/999/approve", {"json": {}}, 404),
        ("POST", "/api/v1/notices/999/reject", {"json": {"reason": "x"}}, 404),
        ("POST", "/api/v1/notices/999/cancel", {"json": {}}, 404),
        ("GET", "/api/v1/subscribers/999", {}, 404),
        ("PATCH", "/api/v1/subscribers/999", {"json": {"name": "x"}}, 404),
        ("DELETE", "/api/v1/subscribers/999", {}, 404),
        ("POST", "/api/v1/topics", {"json": {"code": "air-quality", "name": "x"}}, 409),
        ("POST", "/api/v1/groups", {"json": {"code": "dibao", "name": "x"}}, 409),
        ("POST", "/api/v1/areas", {"json": {"code": VILLAGE_A1, "name": "x"}}, 409),
        ("POST", "/api/v1/topics", {"data": io.BytesIO(b"{" * 2_000_000), "headers": {"Content-Type": JSON}}, 413),
        ("POST", "/api/v1/areas", {"data": b"{}", "headers": {"Content-Type": "text/xml"}}, 415),
        ("GET", "/api/v1/topics", {"params": {"limit": "0"}}, 422),
        ("GET", "/api/v1/topics", {"params": {"cursor": "%%%"}}, 422),
        ("GET", "/api/v1/areas", {"key": None}, 401),
        ("POST", "/api/v1/topics", {"key": "env-viewer", "json": {"code": "water", "name": "x"}}, 403),
        ("GET", "/unsubscribe", {"key": None}, 400),
        ("POST", "/unsubscribe", {"key": None}, 400),
        ("GET", "/unsubscribe", {"key": None, "params": {"token": "x.y"}}, 400),
        ("POST", "/subscribe", {"key": None, "data": {"area": "1"}}, 422),
        ("POST", "/subscribe/confirm", {"key": None, "data": {"request": "x"}}, 400),
        ("GET", "/subscribe", {"key": None, "params": {"area": "1"}}, 404),
        ("GET", "/hooks/kannel/dlr", {"key": None, "params": {"alias": "sms", "token": "x"}}, 403),
        ("POST", "/hooks/aliyun-sms", {"key": None, "params": {"alias": "sms", "token": "x"}, "json": []}, 403),
        ("POST", "/hooks/wechat", {"key": None, "data": b"<xml/>"}, 403),
    ],
)
async def test_every_answer_is_documented_with_its_media_type(
    api: Api, method: str, path: str, kwargs: dict[str, Any], expected: int
) -> None:
    doc = await _document(api)
    status, media, _ = await _answer(api, method, path, **kwargs)
    assert status == expected
    responses = _operation(doc, method, path)["responses"]
    assert str(status) in responses, f"{method} {path} answers {status}, documented: {sorted(responses)}"
    assert media in responses[str(status)].get("content", {}), (media, responses[str(status)])


async def test_state_conflicts_are_documented(api: Api) -> None:
    doc = await _document(api)
    notice_id = await _notice(api)
    assert (await api.call("POST", f"/api/v1/notices/{notice_id}/submit"))[0] == 200
    for action, key, body in (("submit", "env-issuer", None), ("cancel", "env-issuer", {})):
        path = f"/api/v1/notices/{notice_id}/{action}"
        status, _ = await api.call("POST", path, key=key, json=body)
        assert status in (200, 409)
        if status == 409:
            assert "409" in _operation(doc, "POST", path)["responses"]
    phone = {"name": "王五", "phone": "13900002222", "area_code": VILLAGE_A1}
    assert (await api.call("POST", "/api/v1/subscribers", json=phone))[0] == 201
    status, _ = await api.call("POST", "/api/v1/subscribers", json=phone)
    assert status == 409
    assert "409" in _operation(doc, "POST", "/api/v1/subscribers")["responses"]


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found = [p for p in operation.get("parameters", []) if p["name"] == name]
    assert found, f"no parameter {name}"
    return dict(found[0])


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_parameters_carry_the_limits_the_service_enforces(api: Api) -> None:
    doc = await _document(api)
    subscriber = _parameter(doc["paths"]["/api/v1/subscribers/{id}"]["get"], "id")["schema"]
    assert subscriber == {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}
    listing = doc["paths"]["/api/v1/subscribers"]["get"]
    limit = _parameter(listing, "limit")["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 500)
    cursor = _parameter(listing, "cursor")["schema"]
    assert cursor["type"] == "string" and re.fullmatch(cursor["pattern"], "aWQ6MTI")
    assert not re.search(cursor["pattern"], "%%%")
    area = _parameter(listing, "area")["schema"]
    assert re.search(area["pattern"], "370725001") and not re.search(area["pattern"], "37072500")
    assert not re.search(area["pattern"], "３７０７２５")
    group = _parameter(listing, "group")["schema"]
    assert group["pattern"] == "^[a-z][a-z0-9-]{1,47}$"
    state = _resolve(doc, _parameter(doc["paths"]["/api/v1/notices"]["get"], "state")["schema"])
    assert "pending_approval" in state["enum"]
    idempotency = _parameter(doc["paths"]["/api/v1/notices"]["post"], "Idempotency-Key")
    assert idempotency["in"] == "header" and idempotency["schema"]["maxLength"] == 200
    area_in = doc["components"]["schemas"]["AreaIn"]["properties"]["code"]
    assert area_in["pattern"] == area["pattern"]


async def test_form_endpoints_describe_their_bodies_and_queries(api: Api) -> None:
    doc = await _document(api)
    form = "application/x-www-form-urlencoded"
    one_click = doc["paths"]["/unsubscribe"]["post"]
    assert one_click["requestBody"]["content"][form]["schema"]["properties"]["List-Unsubscribe"]["enum"] == [
        "One-Click"
    ]
    assert _parameter(one_click, "token")["required"] is True
    submit = doc["paths"]["/subscribe"]["post"]["requestBody"]["content"][form]["schema"]
    assert {"area", "name", "phone", "topics", "consent", "form_token"} <= set(submit["properties"])
    confirm = doc["paths"]["/subscribe/confirm"]["post"]["requestBody"]["content"][form]["schema"]
    assert {"request", "code"} <= set(confirm["properties"])
    assert _parameter(doc["paths"]["/subscribe"]["get"], "area")["required"] is True
    dlr = doc["paths"]["/hooks/kannel/dlr"]
    assert {"alias", "sig", "id", "type"} <= {p["name"] for p in dlr["get"]["parameters"]}
    assert form in dlr["post"]["requestBody"]["content"]
    assert "text/xml" in doc["paths"]["/hooks/wechat"]["post"]["requestBody"]["content"]
    aliyun = doc["paths"]["/hooks/aliyun-sms"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert aliyun["type"] == "array"


async def test_created_resources_link_to_their_operations(api: Api) -> None:
    doc = await _document(api)
    links = doc["paths"]["/api/v1/subscribers"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert {"get_subscriber", "patch_subscriber", "delete_subscriber"} <= targets
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in links.values())
    notice_links = doc["paths"]["/api/v1/notices"]["post"]["responses"]["201"]["links"]
    assert {"get_notice", "submit_notice", "approve_notice", "cancel_notice"} <= {
        link["operationId"] for link in notice_links.values()
    }


def _allows_null(schema: Any) -> bool:
    if isinstance(schema, dict):
        return schema.get("type") == "null" or any(_allows_null(v) for v in schema.get("anyOf", []))
    return False


async def test_patch_fields_refused_as_null_are_not_nullable_in_the_document(api: Api) -> None:
    doc = await _document(api)
    patch = doc["components"]["schemas"]["SubscriberPatch"]["properties"]
    resident = {"name": "李四", "area_code": VILLAGE_A1}
    status, created = await api.call("POST", "/api/v1/subscribers", key="env-admin", json=resident)
    assert status == 201
    path = f"/api/v1/subscribers/{created['id']}"
    for field in ("name", "area_code", "channels", "language"):
        status, body = await api.call("PATCH", path, key="env-admin", json={field: None})
        assert status == 422, body
        assert not _allows_null(patch[field]), (field, patch[field])
    assert _allows_null(patch["phone"])  # null erases a contact address
    status, _ = await api.call("PATCH", path, key="env-admin", json={"phone": None})
    assert status == 200
