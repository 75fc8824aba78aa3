"""A department's key changes a resident's subscriptions and opt-outs of its own topics only.

A resident subscribed to air-quality alerts (environment) and in the dibao group (civil affairs) is read by both
departments. Neither may subscribe the resident to, unsubscribe them from, or opt them out of the other's topic:
an environment key opting a dibao household out of social assistance would silence the relief notices meant
for it, and clearing an opt-out the resident made on their own page would override their choice. What a
department may not name is ``403`` and nothing changes; what it does not name is kept. Admins change any topic.
Nor does one department erase a resident the other also serves.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from notifier.policy import personal_data_scope
from subscribers.importer import import_file
from tests.conftest import VILLAGE_A1, Api
from tests.databases import run_sql

SHARED = {
    "name": "共管甲",
    "phone": "13900000301",
    "area_code": VILLAGE_A1,
    "groups": ["dibao"],
    "topics": ["air-quality", "social-assistance"],
}


async def shared_resident(api: Api, **changes: Any) -> int:
    status, body = await api.call("POST", "/api/v1/subscribers", json={**SHARED, **changes}, key="env-admin")
    assert status == 201, body
    return int(body["id"])


async def stored(api: Api, resident: int) -> dict[str, Any]:
    status, body = await api.call("GET", f"/api/v1/subscribers/{resident}", key="env-admin")
    assert status == 200, body
    return dict(body)


async def test_a_department_may_not_opt_a_resident_out_of_another_departments_topic(api: Api) -> None:
    resident = await shared_resident(api)
    before = await stored(api, resident)
    path = f"/api/v1/subscribers/{resident}"
    for key, topic in (("env-issuer", "social-assistance"), ("civ-issuer", "air-quality")):
        status, body = await api.call("PATCH", path, json={"opt_out_topics": [topic]}, key=key)
        assert status == 403, (key, body)
        assert body["type"] == "/problems/forbidden" and "opt_out_topics" in body["detail"] and topic in body["detail"]
    assert await stored(api, resident) == before


async def test_a_department_keeps_the_opt_outs_it_does_not_own(api: Api) -> None:
    resident = await shared_resident(api)
    path = f"/api/v1/subscribers/{resident}"
    status, body = await api.call("PATCH", path, json={"opt_out_topics": ["air-quality"]}, key="env-issuer")
    assert status == 200 and body["opt_out_topics"] == ["air-quality"], body
    status, body = await api.call("PATCH", path, json={"opt_out_topics": ["social-assistance"]}, key="civ-issuer")
    assert status == 200, body
    assert sorted(body["opt_out_topics"]) == ["air-quality", "social-assistance"]
    status, body = await api.call("PATCH", path, json={"opt_out_topics": []}, key="civ-issuer")
    assert status == 200 and body["opt_out_topics"] == ["air-quality"], body  # the resident's choice on air quality


async def test_an_opt_out_kept_keeps_where_it_came_from(api: Api) -> None:
    resident = await shared_resident(api)
    await api.store.add_optout(resident, "topic", "air-quality", "page")
    path = f"/api/v1/subscribers/{resident}"
    status, body = await api.call(
        "PATCH", path, json={"opt_out_topics": ["air-quality", "social-assistance"]}, key="env-admin"
    )
    assert status == 200, body
    rows = await run_sql(
        api.store.db, "SELECT value, source FROM subscriber_optouts WHERE subscriber_id = ? AND kind = ?",
        (resident, "topic"),
    )  # fmt: skip
    sources = {row["value"]: row["source"] for row in rows}
    assert sources["air-quality"] == "page"  # the resident's own, not rewritten as the key's
    assert sources["social-assistance"].startswith("api:apikey:") and len(sources) == 2


async def test_a_department_changes_only_its_own_topic_subscriptions(api: Api) -> None:
    resident = await shared_resident(api)
    path = f"/api/v1/subscribers/{resident}"
    status, body = await api.call("PATCH", path, json={"topics": ["disaster-relief"]}, key="civ-issuer")
    assert status == 200, body
    assert body["topics"] == ["air-quality", "disaster-relief"]  # social assistance swapped, air quality kept
    status, body = await api.call(
        "PATCH", path, json={"topics": ["air-quality", "social-assistance"]}, key="civ-issuer"
    )
    assert status == 403 and "air-quality" in body["detail"], body
    assert (await stored(api, resident))["topics"] == ["air-quality", "disaster-relief"]


async def test_a_department_registers_residents_on_its_own_topics_only(api: Api) -> None:
    person = {**SHARED, "topics": ["air-quality"]}
    status, body = await api.call("POST", "/api/v1/subscribers", json=person, key="civ-issuer")
    assert status == 403 and "topics" in body["detail"] and "air-quality" in body["detail"], body
    listed, _ = await api.store.list_subscribers(area=None, group=None, topic=None, cursor=None, limit=10)
    assert listed == []
    status, body = await api.call("POST", "/api/v1/subscribers", json={**SHARED, "topics": ["disaster-relief"]},
                                  key="civ-issuer")  # fmt: skip
    assert status == 201 and body["topics"] == ["disaster-relief"], body


async def test_a_departments_import_registers_residents_on_its_own_topics_only(api: Api, tmp_path: Path) -> None:
    """What the console's import runs: a row naming another department's topic is refused in the report."""
    roster = tmp_path / "居民.csv"
    roster.write_text(
        f"name,phone,area_code,topics\n甲,13900000311,{VILLAGE_A1},air-quality\n乙,13900000312,{VILLAGE_A1},disaster-relief\n",
        encoding="utf-8",
    )
    issuer = await api.store.authenticate(api.keys["civ-issuer"])
    assert issuer is not None
    report = tmp_path / "report.csv"
    scope = await personal_data_scope(api.store, issuer)
    result = await import_file(api.store, roster, actor="test", report_path=report, scope=scope)
    assert (result.imported, result.failed) == (1, 1)
    rows = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [(row[0], row[2]) for row in rows[1:]] == [("2", "topics")] and "air-quality" in rows[1][3]


async def test_an_admin_changes_any_topic(api: Api) -> None:
    resident = await shared_resident(api)
    path = f"/api/v1/subscribers/{resident}"
    status, body = await api.call(
        "PATCH", path, json={"topics": ["disaster-relief"], "opt_out_topics": ["social-assistance"]}, key="env-admin"
    )
    assert status == 200, body
    assert body["topics"] == ["disaster-relief"] and body["opt_out_topics"] == ["social-assistance"]


async def test_a_department_does_not_erase_a_resident_another_department_serves(api: Api) -> None:
    resident = await shared_resident(api)  # air quality (environment) and dibao (civil affairs)
    before = await stored(api, resident)
    for key in ("env-issuer", "civ-issuer"):
        status, body = await api.call("DELETE", f"/api/v1/subscribers/{resident}", key=key)
        assert status == 403, (key, body)
        other = "civil-affairs" if key == "env-issuer" else "environment"
        assert other in body["detail"] and SHARED["phone"] not in body["detail"], body
    assert await stored(api, resident) == before


async def test_a_department_erases_a_resident_only_it_serves(api: Api) -> None:
    resident = await shared_resident(api, groups=[], topics=["air-quality"], phone="13900000302")
    status, _ = await api.call("DELETE", f"/api/v1/subscribers/{resident}", key="env-issuer")
    assert status == 204
    status, _ = await api.call("GET", f"/api/v1/subscribers/{resident}", key="env-admin")
    assert status == 404


async def test_an_admin_erases_a_resident_departments_share(api: Api) -> None:
    resident = await shared_resident(api)
    status, _ = await api.call("DELETE", f"/api/v1/subscribers/{resident}", key="env-admin")
    assert status == 204
