"""Approvals and rejections carry a comment, kept in the notice's history (``decisions``) and the audit log."""

from __future__ import annotations

import json
from typing import Any

from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.store import Store
from tests.conftest import TOWN_A, Api
from tests.test_api_notices import create
from tests.test_cli import run_cli


async def pending(api: Api, key: str = "env-issuer") -> str:
    notice = await create(api, key=key)
    path = f"/api/v1/notices/{notice['id']}"
    status, body = await api.call("POST", path + "/submit", key=key)
    assert status == 200, body
    return path


async def audit_entries(store: Store, action: str) -> list[dict[str, Any]]:
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 1000})
    return [{**row, "detail": json.loads(row["detail"])} for row in rows if row["action"] == action]


async def test_a_rejection_comment_is_kept_in_the_history_and_the_audit_log(api: Api) -> None:
    path = await pending(api)
    comment = "措辞需修改：\n请写明停课范围"
    status, body = await api.call("POST", path + "/reject", key="env-approver", json={"comment": comment})
    assert status == 200 and body["state"] == "rejected", body
    status, shown = await api.call("GET", path, key="env-viewer")
    assert status == 200
    [decision] = shown["decisions"]
    assert decision["decision"] == "rejected" and decision["comment"] == comment
    assert decision["role"] == "approver" and decision["department"] == "environment"
    assert decision["actor"].startswith("apikey:") and decision["decided_at"]
    [entry] = await audit_entries(api.store, "notice.rejected")
    assert entry["detail"]["comment"] == comment and entry["actor"] == decision["actor"]


async def test_an_approval_comment_is_kept_and_no_body_still_approves(api: Api) -> None:
    path = await pending(api)
    status, body = await api.call("POST", path + "/approve", key="env-approver", json={"comment": "核实无误"})
    assert status == 200 and body["state"] == "approved"
    assert [d["comment"] for d in body["decisions"]] == ["核实无误"]
    [entry] = await audit_entries(api.store, "notice.approved")
    assert entry["detail"]["comment"] == "核实无误"
    for body_kwargs in ({}, {"data": b""}, {"json": {}}):
        other = await pending(api)
        status, body = await api.call("POST", other + "/approve", key="env-approver", **body_kwargs)
        assert status == 200 and body["state"] == "approved", (body_kwargs, body)
        assert [d["comment"] for d in body["decisions"]] == [None]


async def test_a_rejection_without_a_comment_is_a_422_naming_comment(api: Api) -> None:
    path = await pending(api)
    for body_kwargs in ({}, {"json": {}}, {"json": {"comment": ""}}, {"json": {"comment": "  \n "}}):
        status, body = await api.call("POST", path + "/reject", key="env-approver", **body_kwargs)
        assert status == 422, (body_kwargs, body)
        assert [e["loc"] for e in body["errors"]] == ["comment"], body
    status, body = await api.call("POST", path + "/reject", key="env-approver", json={"comment": "x" * 2001})
    assert status == 422 and body["errors"][0]["loc"] == "comment"
    status, body = await api.call("POST", path + "/reject", key="env-approver", json={"comment": "a\x1bb"})
    assert status == 422 and body["errors"][0]["loc"] == "comment"
    status, shown = await api.call("GET", path)
    assert shown["state"] == "pending_approval" and shown["decisions"] == []


async def test_the_author_never_approves_their_own_notice(api: Api) -> None:
    path = await pending(api, key="env-admin")
    status, body = await api.call("POST", path + "/approve", key="env-admin", json={"comment": "我自己批准"})
    assert status == 403 and "other than its author" in body["detail"]
    status, shown = await api.call("GET", path)
    assert shown["state"] == "pending_approval" and shown["decisions"] == []


async def test_cli_approve_and_reject_with_comments(store: Store, settings: Settings) -> None:
    _, issuer = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
    _, approver = await store.create_api_key(department="environment", role=Role.APPROVER, name="a", actor="t")
    send = ["notices", "send", "--api-key", issuer, "--topic", "air-quality", "--title", "空气质量提示"]
    send += ["--body", "今日空气轻度污染", "--area", TOWN_A]
    ids = []
    for _ in range(2):
        code, out, err = await run_cli(*send, db_url=settings.database.url)
        assert code == 0, err
        ids.append(int(out.split()[1].rstrip(":")))
    approve = ["notices", "approve", str(ids[0]), "--api-key", approver, "--comment", "同意发布"]
    code, out, err = await run_cli(*approve, db_url=settings.database.url)
    assert code == 0 and "approved" in out, err
    reject = ["notices", "reject", str(ids[1]), "--api-key", approver]
    code, _, err = await run_cli(*reject, db_url=settings.database.url)
    assert code == 2 and "--comment" in err
    code, _, err = await run_cli(*reject, "--comment", " ", db_url=settings.database.url)
    assert code == 2 and "comment" in err and "Traceback" not in err
    code, out, err = await run_cli(*reject, "--comment", "范围写错了", db_url=settings.database.url)
    assert code == 0 and "rejected" in out, err
    approved, rejected = [await store.get_notice(notice_id) for notice_id in ids]
    assert [(d.decision, d.comment) for d in approved.decisions] == [("approved", "同意发布")]
    assert [(d.decision, d.comment) for d in rejected.decisions] == [("rejected", "范围写错了")]
