"""Editing a rejected notice and submitting it again: the approver rejects with a comment, the author edits
and resubmits, a second approver approves; the history keeps the rejection."""

from __future__ import annotations

from typing import Any

from notifier.store import Store
from tests.conftest import TOWN_A, Api
from tests.test_api_notices import ALERT, create


async def reject(api: Api, notice_id: int, comment: str = "数据未核实") -> None:
    assert (await api.call("POST", f"/api/v1/notices/{notice_id}/submit"))[0] == 200
    status, body = await api.call(
        "POST", f"/api/v1/notices/{notice_id}/reject", key="env-approver", json={"comment": comment}
    )
    assert status == 200 and body["state"] == "rejected", body


async def audit_actions(store: Store, notice_id: int) -> list[str]:
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 1000})
    return [r["action"] for r in rows if r["object_type"] == "notice" and r["object_id"] == str(notice_id)]


async def test_rejected_edited_resubmitted_approved(api: Api) -> None:
    notice = await create(api)
    path = f"/api/v1/notices/{notice['id']}"
    await reject(api, notice["id"])
    edited: dict[str, Any] = {**ALERT, "title": "重污染天气橙色预警（更正）", "body": "数据已核实：请减少户外活动。"}
    status, body = await api.call("PUT", path, json=edited)
    assert status == 200, body
    assert body["state"] == "draft" and body["title"] == edited["title"] and body["body"] == edited["body"]
    assert [(d["decision"], d["comment"]) for d in body["decisions"]] == [("rejected", "数据未核实")]
    assert body["reason"] == "数据未核实"  # the rejection's words stay until the next decision
    assert (await api.call("POST", path + "/submit"))[1]["state"] == "pending_approval"
    status, body = await api.call("POST", path + "/approve", key="env-approver2", json={"comment": "可以发布"})
    assert status == 200 and body["state"] == "approved"
    assert [d["decision"] for d in body["decisions"]] == ["rejected", "approved"]
    actions = await audit_actions(api.store, notice["id"])
    assert actions == ["notice.create", "notice.pending_approval", "notice.rejected", "notice.edit",
                       "notice.pending_approval", "notice.approved"]  # fmt: skip


async def test_a_draft_can_be_edited_and_nothing_past_approval_can(api: Api) -> None:
    notice = await create(api)
    path = f"/api/v1/notices/{notice['id']}"
    status, body = await api.call("PUT", path, json={**ALERT, "severity": "extreme"})
    assert status == 200 and body["severity"] == "extreme" and body["state"] == "draft"
    assert (await api.call("POST", path + "/submit"))[0] == 200
    status, body = await api.call("PUT", path, json=ALERT)
    assert status == 409 and "pending_approval" in body["detail"]
    assert (await api.call("POST", path + "/approve", key="env-approver"))[0] == 200
    status, body = await api.call("PUT", path, json=ALERT)
    assert status == 409 and "approved" in body["detail"]
    assert (await api.call("GET", path))[1]["severity"] == "extreme"


async def test_only_the_author_edits_and_the_checks_of_a_new_notice_apply(api: Api) -> None:
    notice = await create(api)
    path = f"/api/v1/notices/{notice['id']}"
    await reject(api, notice["id"])
    status, body = await api.call("PUT", path, json=ALERT, key="env-admin")  # the admin could then approve it
    assert status == 403 and "author" in body["detail"]
    assert (await api.call("PUT", path, json=ALERT, key="env-approver"))[0] == 403
    assert (await api.call("PUT", path, json=ALERT, key="civ-issuer"))[0] == 404
    status, body = await api.call("PUT", path, json={**ALERT, "topic": "social-assistance"})
    assert status == 403
    templated = {**ALERT, "body": None, "template": "heavy-pollution", "data": {"level": "橙色"}}
    status, body = await api.call("PUT", path, json=templated)
    assert status == 422 and {e["loc"] for e in body["errors"]} == {"data.start_date", "data.measures"}
    status, body = await api.call("PUT", path, json={**ALERT, "target": {"areas": [TOWN_A], "nope": 1}})
    assert status == 422
    status, body = await api.call("GET", path)
    assert body["state"] == "rejected" and body["title"] == ALERT["title"]  # refused edits changed nothing
