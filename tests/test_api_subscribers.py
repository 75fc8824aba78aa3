"""Residents through the real HTTP API: valid data is stored, bad data is refused and changes nothing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_B1, Api

RESIDENT = {"name": "王秀英", "phone": "138 0013 8000", "area_code": VILLAGE_A1, "groups": ["dibao"]}
ISSUER = "civ-issuer"  # civil affairs works with the dibao and elderly-alone groups (tests/conftest.py)
ADMIN = "env-admin"


async def count_subscribers(api: Api) -> int:
    items, _ = await api.store.list_subscribers(area=None, group=None, topic=None, cursor=None, limit=1000)
    return len(items)


async def test_create_and_read_resident(api: Api) -> None:
    status, body = await api.call(
        "POST", "/api/v1/subscribers", json={**RESIDENT, "email": "Wang@Example.COM"}, key=ISSUER
    )
    assert status == 201, body
    assert body["phone"] == "+8613800138000"
    assert body["email"] == "Wang@example.com"
    assert body["groups"] == ["dibao"]
    assert body["consent"]["source"] == "api"
    status, fetched = await api.call("GET", f"/api/v1/subscribers/{body['id']}", key="civ-viewer")
    assert status == 200 and fetched == body


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"nickname": "x"}, "nickname"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "010-12345678"}, "phone"),
        ({"phone": 13800138000}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"area_code": "999999999"}, "area_code"),
        ({"area_code": "37072"}, "area_code"),
        ({"groups": ["no-such-group"]}, "groups.0"),
        ({"groups": "dibao"}, "groups"),
        ({"channels": ["carrier-pigeon"]}, "channels.0"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"name": ""}, "name"),
    ],
)
async def test_bad_resident_is_refused_with_field_error(api: Api, change: dict[str, Any], loc: str) -> None:
    before = await count_subscribers(api)
    status, body = await api.call("POST", "/api/v1/subscribers", json={**RESIDENT, **change})
    assert status == 422, body
    assert body["type"] == "/problems/invalid-input"
    assert loc in [e["loc"] for e in body["errors"]], body["errors"]
    assert await count_subscribers(api) == before


async def test_malformed_json_and_wrong_shapes(api: Api) -> None:
    for raw in (b"{not json", b"[1, 2]", b"", '{"name": "\xff"}'.encode("latin-1")):
        status, body = await api.call(
            "POST", "/api/v1/subscribers", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == 422, (raw, body)
        assert body["status"] == 422
    assert await count_subscribers(api) == 0


async def test_oversize_body_is_413(api: Api) -> None:
    huge = json.dumps({**RESIDENT, "name": "x" * 2_000_000}).encode()
    headers = {"Content-Type": "application/json"}
    status, body = await api.call("POST", "/api/v1/subscribers", data=io.BytesIO(huge), headers=headers)
    assert status == 413
    assert body["title"] == "Payload too large"
    assert await count_subscribers(api) == 0


async def test_duplicate_phone_is_conflict(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/subscribers", json=RESIDENT, key=ISSUER))[0] == 201
    status, body = await api.call("POST", "/api/v1/subscribers", json={**RESIDENT, "name": "李四"}, key=ISSUER)
    assert status == 409, body
    assert await count_subscribers(api) == 1


async def test_filters_and_cursor_pagination(api: Api) -> None:
    """With an admin key: half of these residents have no topic and no group, so no department reads them."""
    phones = [f"1390000{i:04d}" for i in range(7)]
    for i, phone in enumerate(phones):
        area = VILLAGE_A1 if i % 2 else VILLAGE_B1
        groups = ["elderly-alone"] if i < 3 else []
        payload = {"name": f"居民{i}", "phone": phone, "area_code": area, "groups": groups}
        assert (await api.call("POST", "/api/v1/subscribers", json=payload, key=ADMIN))[0] == 201
    seen: list[int] = []
    cursor = None
    while True:
        query = f"?limit=2&area={TOWN_A}" + (f"&cursor={cursor}" if cursor else "")
        status, page = await api.call("GET", "/api/v1/subscribers" + query, key=ADMIN)
        assert status == 200
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 == len(set(seen))  # odd indexes live in town A
    status, page = await api.call("GET", "/api/v1/subscribers?group=elderly-alone", key=ADMIN)
    assert [i["name"] for i in page["items"]] == ["居民0", "居民1", "居民2"]
    for query in ("?limit=0", "?limit=abc", "?cursor=garbage!", "?area=12", "?colour=red"):
        status, body = await api.call("GET", "/api/v1/subscribers" + query)
        assert status == 422, (query, body)


async def test_patch_opt_out_and_delete(api: Api) -> None:
    _, created = await api.call("POST", "/api/v1/subscribers", json=RESIDENT, key=ISSUER)
    path = f"/api/v1/subscribers/{created['id']}"
    change = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "opt_out_topics": ["social-assistance"]}
    status, patched = await api.call("PATCH", path, json=change, key=ISSUER)
    assert status == 200, patched
    assert patched["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert patched["opt_out_topics"] == ["social-assistance"]  # its own topic (tests/test_resident_topic_authority.py)
    assert patched["phone"] == created["phone"]
    status, body = await api.call("PATCH", path, json={"phone": "not a phone"}, key=ISSUER)
    assert status == 422 and body["errors"][0]["loc"] == "phone"
    status, body = await api.call("PATCH", path, json={"name": None}, key=ISSUER)
    assert status == 422
    status, withdrawn = await api.call("PATCH", path, json={"consent_withdrawn": True}, key=ISSUER)
    assert withdrawn["consent"]["withdrawn_at"] is not None
    assert (await api.call("DELETE", path, key=ISSUER))[0] == 204
    assert (await api.call("GET", path, key=ISSUER))[0] == 404
    assert (await api.call("DELETE", path, key=ISSUER))[0] == 404
    assert (await api.call("GET", "/api/v1/subscribers/abc"))[0] == 422


async def test_viewer_may_read_but_not_write(api: Api) -> None:
    status, body = await api.call("POST", "/api/v1/subscribers", json=RESIDENT, key="env-viewer")
    assert status == 403 and body["type"] == "/problems/forbidden"
    assert (await api.call("GET", "/api/v1/subscribers", key="env-viewer"))[0] == 200
    assert await count_subscribers(api) == 0
