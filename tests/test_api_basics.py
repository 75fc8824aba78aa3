"""Health, OpenAPI, metrics, authentication and the catalog endpoints."""

from __future__ import annotations

import pytest

from tests.conftest import COUNTY, TOWN_A, Api
from tests.databases import on_postgres


async def test_healthz_and_openapi_need_no_key(api: Api) -> None:
    status, body = await api.call("GET", "/healthz", key=None)
    assert status == 200 and body == {"status": "ok", "database": "postgres" if on_postgres() else "sqlite"}
    status, doc = await api.call("GET", "/openapi.json", key=None)
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    create = doc["paths"]["/api/v1/notices"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NoticeIn"}
    assert "target" in doc["components"]["schemas"]["NoticeIn"]["properties"]
    assert "Problem" in doc["components"]["schemas"]
    for path in doc["paths"].values():
        for operation in path.values():
            for ref in _refs(operation):
                assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_metrics_count_requests(api: Api) -> None:
    await api.call("GET", "/healthz", key=None)
    status, text = await api.call("GET", "/metrics", key=None)
    assert status == 200
    assert 'notifier_http_requests_total{method="GET",route="/healthz",status="200"}' in text


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer wrong", "Basic dXNlcjpwYXNz", "Bearer ntf_000000000000_nope"],
)
async def test_missing_or_wrong_key_is_401(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    status, body = await api.call("GET", "/api/v1/areas", key=None, headers=headers)
    assert status == 401
    assert body["type"] == "/problems/unauthenticated"
    assert body["instance"] == "/api/v1/areas"


async def test_unknown_route_is_a_problem_document(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/nothing-here")
    assert status == 404 and body["status"] == 404


async def test_area_tree(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/areas", key="env-viewer")
    assert status == 200
    (county,) = body["items"]
    assert county["code"] == COUNTY and county["level"] == "county"
    town = next(t for t in county["children"] if t["code"] == TOWN_A)
    assert [v["level"] for v in town["children"]] == ["village", "village"]


async def test_create_area_needs_admin_and_a_known_parent(api: Api) -> None:
    payload = {"code": f"{TOWN_A}999", "name": "新村"}
    assert (await api.call("POST", "/api/v1/areas", json=payload))[0] == 403
    status, body = await api.call("POST", "/api/v1/areas", json=payload, key="env-admin")
    assert status == 201 and body["parent"] == TOWN_A
    assert (await api.call("POST", "/api/v1/areas", json=payload, key="env-admin"))[0] == 409
    status, body = await api.call("POST", "/api/v1/areas", json={"code": "370725777001", "name": "x"}, key="env-admin")
    assert status == 422 and body["errors"][0]["loc"] == "code"


async def test_topics_and_groups(api: Api) -> None:
    status, body = await api.call("POST", "/api/v1/topics", json={"code": "water", "name": "供水"}, key="env-admin")
    assert status == 201 and body["code"] == "water"
    status, body = await api.call("POST", "/api/v1/groups", json={"code": "Bad Code", "name": "x"}, key="env-admin")
    assert status == 422 and body["errors"][0]["loc"] == "code"
    status, page = await api.call("GET", "/api/v1/topics?limit=2")
    assert len(page["items"]) == 2 and page["next_cursor"]
    status, rest = await api.call("GET", f"/api/v1/topics?limit=10&cursor={page['next_cursor']}")
    assert [t["code"] for t in page["items"] + rest["items"]] == [
        "air-quality",
        "social-assistance",
        "disaster-relief",
        "water",
    ]
    assert rest["next_cursor"] is None
    status, groups = await api.call("GET", "/api/v1/groups")
    assert {g["code"] for g in groups["items"]} == {"dibao", "elderly-alone", "disabled"}
