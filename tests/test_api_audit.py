"""GET /api/v1/audit: administrators only, filtered, paged with cursors, and exported as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.domain.enums import Role
from notifier.store.audit_chain import entry_hash
from tests.conftest import Api

NON_ADMIN = [f"env-{role.value}" for role in Role if role is not Role.ADMIN]


async def fill(api: Api) -> None:
    for n in range(7):
        await api.store.audit(f"actor-{n % 2}", "thing.even" if n % 2 == 0 else "thing.odd", "thing", n, {"n": n})


async def all_pages(api: Api, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, body = await api.call("GET", f"/api/v1/audit?limit=2{query}{cursor}", key="env-admin")
        assert status == 200, body
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        cursor = f"&cursor={body['next_cursor']}"


@pytest.mark.parametrize("role_key", NON_ADMIN)
async def test_only_administrators_read_the_audit_log(api: Api, role_key: str) -> None:
    status, body = await api.call("GET", "/api/v1/audit", key=role_key)
    assert status == 403 and "admin" in body["detail"]
    status, _ = await api.call("GET", "/api/v1/audit", key=role_key, headers={"Accept": "text/csv"})
    assert status == 403
    status, _ = await api.call("GET", "/api/v1/audit", key=None)
    assert status == 401


async def test_pages_follow_the_cursor_through_every_entry_in_order(api: Api) -> None:
    await fill(api)
    items = await all_pages(api, "")
    stored = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 100_000})
    assert [i["id"] for i in items] == [r["id"] for r in stored]
    assert all(entry_hash({**i, "detail": r["detail"]}) == i["hash"] for i, r in zip(items, stored, strict=True))


async def test_filters_by_actor_action_and_time(api: Api) -> None:
    before = datetime.now(UTC)
    await fill(api)
    assert [i["detail"]["n"] for i in await all_pages(api, "&actor=actor-1")] == [1, 3, 5]
    assert [i["detail"]["n"] for i in await all_pages(api, "&action=thing.even&actor=actor-0")] == [0, 2, 4, 6]
    stamp = (await all_pages(api, "&action=thing.odd"))[1]["at"]  # entry n=3
    since = [i["detail"]["n"] for i in await all_pages(api, f"&actor=actor-1&from={stamp.replace('+', '%2B')}")]
    assert since == [3, 5]
    until = [i["detail"]["n"] for i in await all_pages(api, f"&actor=actor-1&to={stamp.replace('+', '%2B')}")]
    assert until == [1]
    later = (before + timedelta(days=1)).isoformat().replace("+", "%2B")
    assert await all_pages(api, f"&from={later}") == []


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-01-01", "0", "1654646400", "2026-13-01T00:00:00Z"])
async def test_a_time_not_rfc3339_with_a_zone_is_refused_naming_the_field(api: Api, value: str) -> None:
    status, body = await api.call("GET", f"/api/v1/audit?from={value}", key="env-admin")
    assert status == 422
    assert [e["loc"] for e in body["errors"]] == ["query.from"]


async def test_csv_export_carries_every_matching_entry_and_recomputes(api: Api) -> None:
    await fill(api)
    status, text = await api.call(
        "GET", "/api/v1/audit?limit=1&actor=actor-0", key="env-admin", headers={"Accept": "text/csv"}
    )
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [i["id"] for i in await all_pages(api, "&actor=actor-0")]
    assert len(rows) == 4  # limit sizes JSON pages only
    for row in rows:
        entry = {**row, "id": int(row["id"]), "object_id": row["object_id"] or None}
        assert entry_hash(entry) == row["hash"]


async def test_csv_content_type_and_json_when_csv_is_weighted_zero(api: Api) -> None:
    await fill(api)
    async with api.session.get(
        api.base + "/api/v1/audit",
        headers={"Authorization": f"Bearer {api.keys['env-admin']}", "Accept": "application/json, text/csv"},
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
    status, body = await api.call(
        "GET", "/api/v1/audit", key="env-admin", headers={"Accept": "text/csv;q=0, application/json"}
    )
    assert status == 200 and isinstance(body, dict) and body["items"]


async def test_a_time_that_overflows_once_in_utc_is_refused(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/audit?to=0001-01-01T00:00:00%2B08:00", key="env-admin")
    assert status == 422
    assert [e["loc"] for e in body["errors"]] == ["query.to"]


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%00", "a%0Ab", "%FF"])
async def test_hostile_filter_text_is_a_problem_or_an_empty_page_never_a_500(api: Api, raw: str) -> None:
    status, body = await api.call("GET", f"/api/v1/audit?actor={raw}", key="env-admin")
    assert status in (200, 422), body
    if status == 200:
        assert body["items"] == []
    else:
        assert [e["loc"] for e in body["errors"]] == ["query.actor"]
