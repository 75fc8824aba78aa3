"""The notice life cycle through the real HTTP API, with department scoping and four-eyes approval."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import ChannelConfig, Settings
from notifier.domain.enums import ChannelKind, Role
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.conftest import TOWN_A, Api

ALERT = {
    "topic": "air-quality",
    "title": "重污染天气橙色预警",
    "body": "明日起启动重污染天气橙色预警，请减少户外活动。",
    "severity": "severe",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms", "wechat"],
}


async def create(api: Api, payload: dict[str, Any] | None = None, key: str = "env-issuer") -> dict[str, Any]:
    status, body = await api.call("POST", "/api/v1/notices", json=payload or ALERT, key=key)
    assert status == 201, body
    return body


async def count_notices(api: Api) -> int:
    items, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=1000)
    return len(items)


async def test_draft_submit_approve(api: Api) -> None:
    notice = await create(api)
    assert notice["state"] == "draft" and notice["department"] == "environment"
    path = f"/api/v1/notices/{notice['id']}"
    status, body = await api.call("POST", path + "/approve", key="env-approver")
    assert status == 409 and "draft" in body["detail"]  # not submitted yet
    status, body = await api.call("POST", path + "/submit")
    assert status == 200 and body["state"] == "pending_approval"
    status, body = await api.call("POST", path + "/approve", key="env-approver", json={"reason": "核实无误"})
    assert status == 200 and body["state"] == "approved"
    assert body["approved_by"] is not None
    status, body = await api.call("GET", path, key="env-viewer")
    assert status == 200 and body["state"] == "approved"
    assert (await api.call("POST", path + "/approve", key="env-approver2"))[0] == 409


async def test_author_cannot_approve_own_notice(api: Api) -> None:
    notice = await create(api, key="env-admin")
    path = f"/api/v1/notices/{notice['id']}"
    await api.call("POST", path + "/submit", key="env-admin")
    status, body = await api.call("POST", path + "/approve", key="env-admin")
    assert status == 403 and "other than its author" in body["detail"]
    assert (await api.call("POST", path + "/approve", key="env-issuer"))[0] == 403  # role
    assert (await api.call("GET", path))[1]["state"] == "pending_approval"


async def test_other_department_cannot_see_or_approve(api: Api) -> None:
    notice = await create(api)
    path = f"/api/v1/notices/{notice['id']}"
    await api.call("POST", path + "/submit")
    assert (await api.call("POST", path + "/approve", key="civ-approver"))[0] == 404
    assert (await api.call("GET", path, key="civ-viewer"))[0] == 404
    assert (await api.call("GET", "/api/v1/notices", key="civ-viewer"))[1]["items"] == []


async def test_topic_outside_department_is_forbidden(api: Api) -> None:
    status, body = await api.call("POST", "/api/v1/notices", json={**ALERT, "topic": "social-assistance"})
    assert status == 403
    assert "may not issue on topic social-assistance" in body["detail"]
    assert await count_notices(api) == 0
    relief = {**ALERT, "topic": "disaster-relief", "target": {"groups": ["dibao"]}}
    assert (await api.call("POST", "/api/v1/notices", json=relief, key="civ-issuer"))[0] == 201


async def test_invalid_notices_change_nothing(api: Api) -> None:
    cases = [
        ({**ALERT, "colour": "red"}, "colour"),
        ({**ALERT, "severity": "apocalyptic"}, "severity"),
        ({**ALERT, "target": {}}, "target"),
        ({**ALERT, "target": {"areas": ["370725999"]}}, "target.areas.0"),
        ({**ALERT, "target": {"groups": ["nobody"]}}, "target.groups.0"),
        ({**ALERT, "channels": ["fax"]}, "channels.0"),
        ({**ALERT, "title": ""}, "title"),
        ({**ALERT, "send_at": "2026-12-01T08:00:00"}, "send_at"),
        ({**ALERT, "template": "air-alert"}, ""),
        ({**ALERT, "references": 999}, "references"),
        ({k: v for k, v in ALERT.items() if k != "title"}, "title"),
    ]
    for payload, loc in cases:
        status, body = await api.call("POST", "/api/v1/notices", json=payload)
        assert status == 422, (payload, body)
        assert loc in [e["loc"] for e in body["errors"]], (loc, body["errors"])
    assert await count_notices(api) == 0


async def test_idempotency_key_returns_the_first_notice(api: Api) -> None:
    headers = {"Idempotency-Key": "alert-2026-11-29-01"}
    status, first = await api.call("POST", "/api/v1/notices", json=ALERT, headers=headers)
    assert status == 201
    status, again = await api.call("POST", "/api/v1/notices", json=ALERT, headers=headers)
    assert status == 200 and again["id"] == first["id"]
    status, body = await api.call("POST", "/api/v1/notices", json={**ALERT, "title": "另一条"}, headers=headers)
    assert status == 409 and "Idempotency-Key" in body["detail"]
    assert await count_notices(api) == 1
    status, other_dept = await api.call(
        "POST", "/api/v1/notices", json={**ALERT, "topic": "disaster-relief"}, headers=headers, key="civ-issuer"
    )
    assert status == 201 and other_dept["id"] != first["id"]  # keys are per department


async def test_reject_needs_a_comment_and_cancel_stops(api: Api) -> None:
    notice = await create(api)
    path = f"/api/v1/notices/{notice['id']}"
    await api.call("POST", path + "/submit")
    status, body = await api.call("POST", path + "/reject", key="env-approver")
    assert status == 422 and body["errors"][0]["loc"] == "comment"
    status, body = await api.call("POST", path + "/reject", key="env-approver", json={"reason": "措辞需修改"})
    assert status == 200 and body["state"] == "rejected" and body["reason"] == "措辞需修改"
    assert (await api.call("POST", path + "/cancel"))[0] == 409  # terminal
    second = await create(api)
    status, body = await api.call("POST", f"/api/v1/notices/{second['id']}/cancel", json={"reason": "重复"})
    assert status == 200 and body["state"] == "cancelled"


async def test_deliveries_listing_and_audit_trail(api: Api) -> None:
    notice = await create(api)
    status, page = await api.call("GET", f"/api/v1/notices/{notice['id']}/deliveries")
    assert status == 200 and page == {"items": [], "next_cursor": None}
    assert (await api.call("GET", "/api/v1/notices/424242"))[0] == 404
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
    assert ("notice.create", "notice", str(notice["id"])) in [
        (r["action"], r["object_type"], r["object_id"]) for r in rows
    ]


async def test_preview_counts_residents_and_deliveries_per_town(api: Api) -> None:
    from tests.conftest import TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1

    residents = [
        {"name": "甲", "phone": "13900000001", "area_code": VILLAGE_A1, "channels": ["sms"]},
        {"name": "乙", "phone": "13900000002", "email": "b@example.org", "area_code": VILLAGE_A2},
        {"name": "丙", "area_code": VILLAGE_A2},  # no personal channel at all
        {"name": "丁", "phone": "13900000004", "area_code": VILLAGE_B1},  # other town
    ]
    for resident in residents:
        assert (await api.call("POST", "/api/v1/subscribers", json=resident))[0] == 201
    notice = await create(api, {**ALERT, "channels": ["sms", "email"], "channel_mode": "all"})
    status, figures = await api.call("GET", f"/api/v1/notices/{notice['id']}/preview", key="env-viewer")
    assert status == 200, figures
    assert (figures["residents"], figures["reached"], figures["skipped"]) == (3, 2, 1)
    assert figures["deliveries"] == {"sms": 2, "email": 1}
    assert set(figures["towns"]) == {TOWN_A} and TOWN_B not in figures["towns"]
    assert figures["sms_segments"] == 1  # a short Chinese alert fits one UCS-2 part
    assert (await api.call("GET", f"/api/v1/notices/{notice['id']}/preview", key="civ-viewer"))[0] == 404


async def test_update_to_the_residents_an_earlier_notice_reached(api: Api) -> None:
    first = await create(api)
    status, body = await api.call(
        "POST", "/api/v1/notices", json={**ALERT, "title": "预警解除", "target": {"referenced": True}}
    )
    assert status == 422 and "references" in body["detail"]
    update = {**ALERT, "title": "预警解除", "references": first["id"], "target": {"referenced": True}}
    status, body = await api.call("POST", "/api/v1/notices", json=update)
    assert status == 201 and body["target"]["referenced"] is True and body["references"] == first["id"]


async def test_cancel_keeps_the_reason(api: Api) -> None:
    notice = await create(api)
    status, body = await api.call("POST", f"/api/v1/notices/{notice['id']}/cancel", json={"reason": "信息有误"})
    assert status == 200 and body["state"] == "cancelled" and body["reason"] == "信息有误"
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/cancel"))[0] == 409


async def test_preview_counts_board_printouts_per_village_when_an_engine_runs(
    store: Store, settings: Settings
) -> None:
    config = settings.model_copy(deep=True)
    config.channels["board"] = ChannelConfig(kind=ChannelKind.BULLETIN, type="recording")
    engine = Engine(store, config, {"board": RecordingChannel("board"), "sms": RecordingChannel("sms")})

    async def engine_factory(app: object) -> Engine | None:
        return engine

    server = TestServer(create_app(config, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            _, key = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
            api = Api(str(server.make_url("")).rstrip("/"), session, {"env-issuer": key}, store)
            notice = await create(api, {**ALERT, "channels": ["sms", "bulletin"]})
            status, figures = await api.call("GET", f"/api/v1/notices/{notice['id']}/preview")
    finally:
        await server.close()
    assert status == 200, figures
    assert figures["areas"] == {"bulletin": 2}  # the two villages of town A in the seeded catalog
