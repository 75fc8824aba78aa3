"""A notice that has already expired reaches no one: it is refused when it arrives, not created and expired later.

``POST /notices``, the edit of a draft and a CAP alert whose ``expires`` has passed are ``422`` naming the field,
and nothing is stored; a repeated CAP alert is still answered with the notice it made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import TOWN_A, Api
from tests.databases import run_sql

NOTICE = {"topic": "air-quality", "title": "重污染天气预警", "body": "请减少户外活动。", "target": {"areas": [TOWN_A]}}
PAST = "2020-01-01T00:00:00+08:00"


async def notice_count(api: Api) -> int:
    rows = await run_sql(api.store.db, "SELECT COUNT(*) AS n FROM notices")
    return int(rows[0]["n"])


async def test_a_notice_already_expired_is_refused(api: Api) -> None:
    before = await notice_count(api)
    status, body = await api.call("POST", "/api/v1/notices", json={**NOTICE, "expires_at": PAST})
    assert status == 422, body
    assert [error["loc"] for error in body["errors"]] == ["expires_at"]
    assert "already past" in body["errors"][0]["msg"]
    assert await notice_count(api) == before


async def test_a_notice_expiring_later_is_created(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, body = await api.call("POST", "/api/v1/notices", json={**NOTICE, "expires_at": later})
    assert status == 201, body


async def test_a_draft_cannot_be_edited_into_an_expired_one(api: Api) -> None:
    status, draft = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 201, draft
    path = f"/api/v1/notices/{draft['id']}"
    status, body = await api.call("PUT", path, json={**NOTICE, "expires_at": PAST})
    assert status == 422 and [error["loc"] for error in body["errors"]] == ["expires_at"], body
    status, stored = await api.call("GET", path)
    assert status == 200 and stored["expires_at"] is None


def cap_alert(identifier: str, expires: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>hbj@example.gov.cn</sender><sent>2026-12-01T08:00:00+08:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>zh-CN</language><category>Env</category><event>重污染天气</event><urgency>Expected</urgency>
    <severity>Severe</severity><certainty>Likely</certainty><expires>{expires}</expires>
    <headline>重污染天气橙色预警</headline><description>请减少户外活动。</description>
    <area><areaDesc>全县</areaDesc></area></info>
</alert>""".encode()


async def post_cap(api: Api, alert: bytes) -> tuple[int, Any]:
    return await api.call(
        "POST",
        f"/api/v1/cap?area={TOWN_A}&topic=air-quality",
        data=alert,
        headers={"Content-Type": "application/cap+xml"},
    )


async def test_a_cap_alert_expired_on_arrival_is_refused(api: Api) -> None:
    before = await notice_count(api)
    status, body = await post_cap(api, cap_alert("expired-1", PAST))
    assert status == 422, body
    assert [error["loc"] for error in body["errors"]] == ["alert.info.expires"]
    assert await notice_count(api) == before
    rows = await run_sql(api.store.db, "SELECT COUNT(*) AS n FROM cap_alerts")
    assert int(rows[0]["n"]) == 0  # not recorded as seen: sent again with a later expiry, it is taken

    later = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    status, body = await post_cap(api, cap_alert("expired-1", later))
    assert status == 201, body


def cap_update(identifier: str, expires: str, earlier: str) -> bytes:
    alert = cap_alert(identifier, expires).replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>")
    references = f"<references>hbj@example.gov.cn,{earlier},2026-12-01T08:00:00+08:00</references>".encode()
    return alert.replace(b"<info>", references + b"<info>", 1)


async def test_an_update_already_expired_ends_the_alert_it_updates(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    status, first = await post_cap(api, cap_alert("running-1", later))
    assert status == 201 and first["state"] == "pending_approval", first
    before = await notice_count(api)

    status, body = await post_cap(api, cap_update("over-1", PAST, "running-1"))

    assert status == 200 and body["id"] == first["id"] and body["state"] == "cancelled", body
    assert await notice_count(api) == before  # no notice of its own
    status, again = await post_cap(api, cap_update("over-1", PAST, "running-1"))
    assert (status, again["id"]) == (200, first["id"])  # recorded: the same update again is a repeat


async def lapse(api: Api, notice_id: int) -> None:
    """The notice's expiry passes while it waits (time moves on; a notice cannot be created expired)."""
    await run_sql(api.store.db, "UPDATE notices SET expires_at = ? WHERE id = ?",
                  ("2019-12-31T16:00:00.000000+00:00", notice_id))  # fmt: skip


async def test_a_notice_that_expired_while_it_waited_is_neither_submitted_nor_approved(api: Api) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, draft = await api.call("POST", "/api/v1/notices", json={**NOTICE, "expires_at": later})
    assert status == 201, draft
    status, waiting = await api.call("POST", "/api/v1/notices", json={**NOTICE, "expires_at": later})
    assert (await api.call("POST", f"/api/v1/notices/{waiting['id']}/submit"))[0] == 200
    await lapse(api, draft["id"])
    await lapse(api, waiting["id"])

    status, body = await api.call("POST", f"/api/v1/notices/{draft['id']}/submit")
    assert status == 409 and "expired" in body["detail"], body
    status, body = await api.call("POST", f"/api/v1/notices/{waiting['id']}/approve", key="env-approver")
    assert status == 409 and "expired" in body["detail"], body
    states = [(await api.call("GET", f"/api/v1/notices/{n['id']}"))[1]["state"] for n in (draft, waiting)]
    assert states == ["draft", "pending_approval"]
