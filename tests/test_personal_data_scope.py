"""Personal data is read by the departments that need it: their topics' subscribers, their groups' members.

The general check walks the route table: every GET endpoint of the API, called by every role of two
departments with every resident and notice id, must never show a resident the key may not read, nor a
group membership outside the key's department.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from notifier.api.app import ALL_ROUTES
from notifier.domain.enums import Role
from notifier.domain.errors import Forbidden
from notifier.domain.models import PersonalDataScope, SubscriberIn
from subscribers.importer import outside_scope
from subscribers.rows import Row
from tests.conftest import VILLAGE_A1, VILLAGE_B1, Api
from tests.databases import run_sql

ROLES = [role.value for role in Role]


@dataclass
class Residents:
    dibao_only: dict[str, Any]  # civil affairs' resident: in dibao, subscribed to social assistance
    air_and_groups: dict[str, Any]  # subscribes to air quality; in dibao and disabled
    nobodys: dict[str, Any]  # no topic, no group: the administrators' alone
    notices: list[int]


def visible_to(key: str, residents: Residents) -> dict[int, set[str]]:
    """Resident id -> the groups the key may see, for the residents it may read."""
    if key.endswith("-admin"):
        return {r["id"]: set(r["groups"]) for r in (residents.dibao_only, residents.air_and_groups, residents.nobodys)}
    if key.startswith("civ-"):  # civil affairs: social assistance and disaster relief; dibao and elderly-alone
        return {residents.dibao_only["id"]: {"dibao"}, residents.air_and_groups["id"]: {"dibao"}}
    return {residents.air_and_groups["id"]: set()}  # environment: air quality, no group


@pytest.fixture
async def residents(api: Api) -> Residents:
    people = [
        {"name": "低保甲", "phone": "13900000101", "email": "jia@example.org", "area_code": VILLAGE_A1,
         "groups": ["dibao"], "topics": ["social-assistance"]},
        {"name": "空气乙", "phone": "13900000102", "email": "yi@example.org", "area_code": VILLAGE_B1,
         "groups": ["dibao", "disabled"], "topics": ["air-quality"]},
        {"name": "无名丙", "phone": "13900000103", "email": "bing@example.org", "area_code": VILLAGE_A1},
    ]
    created = []
    for person in people:
        status, body = await api.call("POST", "/api/v1/subscribers", json=person, key="env-admin")
        assert status == 201, body
        created.append(body)
    notices = []
    for key, topic in (("env-issuer", "air-quality"), ("civ-issuer", "social-assistance")):
        notice = {"topic": topic, "title": "通知", "body": "内容", "target": {"areas": ["370725"]}}
        status, body = await api.call("POST", "/api/v1/notices", json=notice, key=key)
        assert status == 201, body
        notices.append(body["id"])
    return Residents(*created, notices=notices)


def resident_objects(document: Any) -> list[dict[str, Any]]:
    """Every JSON object in a response that carries a resident's contact fields."""
    found = []
    if isinstance(document, dict):
        if "phone" in document and "groups" in document:
            found.append(document)
        for value in document.values():
            found += resident_objects(value)
    elif isinstance(document, list):
        for value in document:
            found += resident_objects(value)
    return found


def assert_only_visible(key: str, residents: Residents, status: int, body: Any) -> None:
    allowed = visible_to(key, residents)
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    for resident in (residents.dibao_only, residents.air_and_groups, residents.nobodys):
        if resident["id"] not in allowed:
            for value in (resident["phone"], resident["email"], resident["name"]):
                assert value not in text, f"{key} read resident {resident['id']} ({status})"
    for shown in resident_objects(body if not isinstance(body, str) else None):
        if "id" not in shown:  # the before/after of an audit entry: only masked contact values may appear
            assert all("*" in str(shown[field]) for field in ("phone", "email") if shown.get(field)), shown
            continue
        assert shown["id"] in allowed
        assert set(shown["groups"]) == allowed[shown["id"]], f"{key} sees groups {shown['groups']}"


GET_ROUTES = [r.path for r in ALL_ROUTES if r.method == "GET" and r.path.startswith("/api/v1/")]


@pytest.mark.parametrize("department", ["env", "civ"])
@pytest.mark.parametrize("role", ROLES)
async def test_no_endpoint_shows_a_resident_or_membership_outside_the_department(
    api: Api, residents: Residents, department: str, role: str
) -> None:
    key = f"{department}-{role}"
    ids = [r["id"] for r in (residents.dibao_only, residents.air_and_groups, residents.nobodys)] + residents.notices
    prefixes = [plain.split("_")[1] for plain in api.keys.values()]
    called = 0
    for path in GET_ROUTES:
        names = re.findall(r"{(\w+)}", path)
        values = ids if names == ["id"] else prefixes if names == ["prefix"] else [""] if not names else []
        for value in values:
            concrete = re.sub(r"{\w+}", str(value), path)
            for query in ("", "?limit=500", f"?area={VILLAGE_A1}", "?topic=air-quality", "?group=dibao"):
                status, body = await api.call("GET", concrete + query, key=key)
                assert status < 500, (concrete, body)
                assert_only_visible(key, residents, status, body)
                called += 1
    assert called > 50
    if role in ("issuer", "admin"):  # a change answers with the resident as the key may see it
        for resident_id in visible_to(key, residents):
            status, body = await api.call("PATCH", f"/api/v1/subscribers/{resident_id}", json={"language": "zh"},
                                          key=key)
            assert status == 200, body
            assert_only_visible(key, residents, status, body)


async def test_environment_viewer_cannot_read_a_dibao_residents_phone_or_group(
    api: Api, residents: Residents
) -> None:
    hidden = residents.dibao_only["id"]
    status, body = await api.call("GET", f"/api/v1/subscribers/{hidden}", key="env-viewer")
    assert status == 404 and "13900000101" not in json.dumps(body)
    status, body = await api.call("GET", "/api/v1/subscribers?limit=500", key="env-viewer")
    assert [item["id"] for item in body["items"]] == [residents.air_and_groups["id"]]
    assert body["items"][0]["groups"] == [] and body["items"][0]["phone"] == "+8613900000102"
    status, body = await api.call("GET", f"/api/v1/subscribers/{hidden}", key="civ-viewer")
    assert status == 200 and body["phone"] == "+8613900000101" and body["groups"] == ["dibao"]


async def test_filtering_by_a_group_outside_the_department_is_refused(api: Api, residents: Residents) -> None:
    """Else the filter itself would tell which of the department's residents are in the group."""
    status, body = await api.call("GET", "/api/v1/subscribers?group=dibao", key="env-viewer")
    assert status == 403 and "dibao" in body["detail"]
    status, body = await api.call("GET", "/api/v1/subscribers?group=disabled", key="civ-viewer")
    assert status == 403
    status, body = await api.call("GET", "/api/v1/subscribers?group=dibao", key="civ-viewer")
    assert status == 200 and len(body["items"]) == 2


async def test_changes_are_scoped_and_keep_memberships_the_department_cannot_see(
    api: Api, residents: Residents
) -> None:
    both = f"/api/v1/subscribers/{residents.air_and_groups['id']}"
    hidden = f"/api/v1/subscribers/{residents.nobodys['id']}"
    for method, body in (("PATCH", {"language": "en"}), ("DELETE", None)):
        status, _ = await api.call(method, hidden, json=body, key="civ-issuer")
        assert status == 404
    status, body = await api.call("PATCH", both, json={"groups": ["disabled"]}, key="civ-issuer")
    assert status == 403 and "disabled" in body["detail"]
    status, body = await api.call("PATCH", both, json={"groups": []}, key="civ-issuer")
    assert status == 200 and body["groups"] == []
    status, body = await api.call("GET", both, key="env-admin")
    assert body["groups"] == ["disabled"]  # the membership civil affairs cannot see is kept
    resident = {"name": "新丁", "phone": "13900000109", "area_code": VILLAGE_A1, "groups": ["dibao"]}
    status, body = await api.call("POST", "/api/v1/subscribers", json=resident, key="env-issuer")
    assert status == 403 and "dibao" in body["detail"]
    status, body = await api.call("POST", "/api/v1/subscribers", json=resident, key="civ-issuer")
    assert status == 201 and body["groups"] == ["dibao"]


async def test_reads_of_personal_data_are_audited_without_the_data(api: Api, residents: Residents) -> None:
    viewer = await api.store.authenticate(api.keys["civ-viewer"])
    assert viewer is not None
    status, _ = await api.call("GET", f"/api/v1/subscribers?area={VILLAGE_A1}&group=dibao", key="civ-viewer")
    assert status == 200
    status, _ = await api.call("GET", f"/api/v1/subscribers/{residents.dibao_only['id']}", key="civ-viewer")
    assert status == 200
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 10_000})
    reads = [r for r in rows if r["actor"] == f"apikey:{viewer.id}"]
    assert [r["action"] for r in reads] == ["subscriber.list", "subscriber.read"]
    listed = json.loads(reads[0]["detail"])
    assert listed["filter"] == {"area": VILLAGE_A1, "group": "dibao"} and listed["rows"] == 1
    assert reads[1]["object_id"] == str(residents.dibao_only["id"])
    text = json.dumps(reads, ensure_ascii=False)
    assert "1390000" not in text and "example.org" not in text and "低保甲" not in text


async def test_admin_reads_everyone_with_every_membership(api: Api, residents: Residents) -> None:
    status, body = await api.call("GET", "/api/v1/subscribers?limit=500", key="civ-admin")
    assert status == 200
    groups = {item["id"]: item["groups"] for item in body["items"]}
    assert groups == {residents.dibao_only["id"]: ["dibao"], residents.air_and_groups["id"]: ["dibao", "disabled"],
                      residents.nobodys["id"]: []}


# A notice's target reads residents too: its deliveries and its preview tell who it reaches.


def notice_to(target: dict[str, Any]) -> dict[str, Any]:
    return {"topic": "air-quality", "title": "重污染天气预警", "body": "减少外出", "target": target}


async def test_a_department_targets_only_the_groups_it_works_with(api: Api, residents: Residents) -> None:
    """Else the notice's deliveries and preview would list the group's members."""
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"groups": ["dibao"]}), key="env-issuer")
    assert status == 403 and body["detail"].startswith("target.groups:") and "dibao" in body["detail"]
    status, body = await api.call("GET", "/api/v1/notices?limit=500", key="env-issuer")
    assert [item["id"] for item in body["items"]] == [residents.notices[0]]  # nothing was created
    civil = {**notice_to({"groups": ["dibao"]}), "topic": "social-assistance"}
    status, body = await api.call("POST", "/api/v1/notices", json=civil, key="civ-issuer")
    assert status == 201, body
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"groups": ["dibao"]}), key="env-admin")
    assert status == 201, body


async def test_a_department_targets_only_its_own_topics(api: Api, residents: Residents) -> None:
    status, body = await api.call(
        "POST", "/api/v1/notices", json=notice_to({"topics": ["social-assistance"]}), key="env-issuer"
    )
    assert status == 403 and body["detail"].startswith("target.topics:") and "social-assistance" in body["detail"]
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"topics": ["air-quality"]}),
                                  key="env-issuer")
    assert status == 201, body
    status, body = await api.call(
        "POST", "/api/v1/notices", json=notice_to({"topics": ["social-assistance"]}), key="env-admin"
    )
    assert status == 201, body


async def test_residents_named_outside_the_scope_are_refused_as_if_unknown(api: Api, residents: Residents) -> None:
    hidden, unknown = residents.dibao_only["id"], 10**9
    status, outside = await api.call(
        "POST", "/api/v1/notices", json=notice_to({"subscribers": [hidden]}), key="env-issuer"
    )
    assert status == 422 and [e["loc"] for e in outside["errors"]] == ["target.subscribers.0"]
    status, missing = await api.call(
        "POST", "/api/v1/notices", json=notice_to({"subscribers": [unknown]}), key="env-issuer"
    )
    assert status == 422 and missing == outside  # the answer does not tell whether the resident exists
    readable = residents.air_and_groups["id"]
    status, body = await api.call(
        "POST", "/api/v1/notices", json=notice_to({"subscribers": [readable, hidden]}), key="env-issuer"
    )
    assert status == 422 and [e["loc"] for e in body["errors"]] == ["target.subscribers.1"]
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"subscribers": [readable]}),
                                  key="env-issuer")
    assert status == 201, body
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"subscribers": [hidden]}),
                                  key="env-admin")
    assert status == 201, body
    status, body = await api.call("POST", "/api/v1/notices", json=notice_to({"subscribers": [unknown]}),
                                  key="env-admin")
    assert status == 422 and [e["loc"] for e in body["errors"]] == ["target.subscribers.0"]


async def test_a_delivery_list_never_shows_an_address_a_gateway_echoed(api: Api, residents: Residents) -> None:
    """A county-wide notice reaches residents the department cannot read; their failed deliveries carry
    the gateway's words, which often repeat the address (an SMTP 550 names the mailbox)."""
    county_wide = residents.notices[0]
    errors = {
        "email": "rejected: 550 5.1.1 <JIA@example.org>: Recipient address rejected",
        "sms": "invalid-number: isv.MOBILE_NUMBER_ILLEGAL: 13900000101 is not a mobile number",
    }
    addresses = {"email": "jia@example.org", "sms": "+8613900000101"}
    for channel, error in errors.items():
        await run_sql(
            api.store.db,
            "INSERT INTO deliveries (notice_id, subscriber_id, channel, state, address, last_error, created_at,"
            " updated_at) VALUES (?, ?, ?, 'failed', ?, ?, '2026-11-30T08:00:00+00:00',"
            " '2026-11-30T08:00:00+00:00')",
            (county_wide, residents.dibao_only["id"], channel, addresses[channel], error),
        )
    status, body = await api.call("GET", f"/api/v1/notices/{county_wide}/deliveries", key="env-viewer")
    assert status == 200 and len(body["items"]) == 2
    text = json.dumps(body).lower()
    assert "jia@example.org" not in text and "13900000101" not in text
    assert {item["last_error"].split(":")[0] for item in body["items"]} == {"rejected", "invalid-number"}


# A duplicate phone or external_id cannot be registered silently, nor tell a department who has it.


async def test_a_duplicate_names_the_other_resident_only_to_a_key_that_reads_it(
    api: Api, residents: Residents
) -> None:
    hidden = residents.dibao_only["id"]  # civil affairs reads this resident; environment does not
    newcomer = {"name": "重名", "phone": "13900000101", "area_code": VILLAGE_A1, "topics": ["air-quality"]}
    status, created = await api.call("POST", "/api/v1/subscribers", json=newcomer, key="env-issuer")
    assert status == 409 and created["field"] == "phone" and "existing_id" not in created
    assert not re.search(r"\d", created["detail"]), created["detail"]  # no id in the words either
    own = f"/api/v1/subscribers/{residents.air_and_groups['id']}"
    status, patched = await api.call("PATCH", own, json={"phone": "13900000101"}, key="env-issuer")
    assert status == 409 and {**patched, "instance": ""} == {**created, "instance": ""}
    for key, topic in (("civ-issuer", "social-assistance"), ("env-admin", "air-quality")):
        status, body = await api.call("POST", "/api/v1/subscribers", json={**newcomer, "topics": [topic]}, key=key)
        assert status == 409 and body["existing_id"] == hidden and f"id {hidden}" in body["detail"], key

    rostered = {"name": "名册", "phone": "13900000111", "area_code": VILLAGE_A1, "groups": ["dibao"],
                "external_id": "MZ-0001"}
    status, body = await api.call("POST", "/api/v1/subscribers", json=rostered, key="civ-issuer")
    assert status == 201, body
    rostered_id = body["id"]
    again = {**newcomer, "phone": "13900000112", "external_id": "MZ-0001"}
    status, body = await api.call("POST", "/api/v1/subscribers", json=again, key="env-issuer")
    assert status == 409 and body["field"] == "external_id" and "existing_id" not in body
    assert str(rostered_id) not in re.findall(r"\d+", body["detail"]), body["detail"]

    issuer = await api.store.authenticate(api.keys["env-issuer"])
    assert issuer is not None
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 10_000})
    refused = [r for r in rows if r["actor"] == f"apikey:{issuer.id}" and r["action"] == "subscriber.duplicate"]
    assert [json.loads(r["detail"]) for r in refused] == [
        {"field": "phone", "disclosed": False}, {"field": "phone", "disclosed": False},
        {"field": "external_id", "disclosed": False},
    ]
    assert "13900000101" not in json.dumps(rows)


def test_the_importer_refuses_the_groups_and_topics_the_api_refuses_in_the_same_words() -> None:
    scope = PersonalDataScope("civil", frozenset({"relief"}), frozenset({"dibao"}))
    data = SubscriberIn(
        name="王秀英", phone="13912340001", area_code=VILLAGE_A1, groups=["dibao", "disabled"],
        topics=["relief", "air-quality"],
    )  # fmt: skip
    refused = [(error.field, error.message) for error in outside_scope(Row(7, "m-7", data), data, scope)]
    assert refused == [
        ("groups", "department civil does not work with group disabled"),
        ("topics", "department civil does not issue on topic air-quality"),
    ]
    with pytest.raises(Forbidden) as groups:
        scope.check_groups(data.groups, "groups")
    assert groups.value.detail == "groups: department civil does not work with group disabled; its groups: dibao"
    with pytest.raises(Forbidden) as topics:
        scope.check_topics(data.topics, "topics")
    assert topics.value.detail == "topics: department civil does not issue on topic air-quality; its topics: relief"
    assert outside_scope(Row(8, None, data), data, PersonalDataScope("civil", frozenset(data.topics),
                                                                     frozenset(data.groups))) == []  # fmt: skip
