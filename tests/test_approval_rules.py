"""Approval rules from the config: distinct approvers per department and severity, never the author; the
emergency override of extreme alerts, its roles, and its approval after the fact."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.config import ApprovalConfig, Settings, load_settings
from notifier.domain.enums import Role, Severity
from notifier.domain.errors import ConfigError
from tests.conftest import TOWN_A, Api

CIVIL = {
    "topic": "social-assistance",
    "title": "低保资格年审通知",
    "body": "请于本月底前到村委会办理低保资格年审。",
    "target": {"groups": ["dibao"]},
    "channels": ["sms"],
}
ENV = {
    "topic": "air-quality",
    "title": "重污染天气红色预警",
    "body": "今晚起启动红色预警，中小学停课。",
    "severity": "extreme",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms"],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.approval = ApprovalConfig.model_validate(
        {
            "approvers": 1,
            "severity": {"extreme": 2},
            "departments": {"civil-affairs": {"approvers": 1, "severity": {"severe": 2, "extreme": 2}}},
            "override_roles": ["admin"],
        }
    )
    return settings


async def submitted(api: Api, payload: dict[str, Any], key: str) -> str:
    status, body = await api.call("POST", "/api/v1/notices", json=payload, key=key)
    assert status == 201, body
    path = f"/api/v1/notices/{body['id']}"
    status, body = await api.call("POST", path + "/submit", key=key)
    assert status == 200 and body["state"] == "pending_approval", body
    return path


async def audit_actions(api: Api, notice_path: str) -> list[tuple[str, dict[str, Any]]]:
    notice_id = notice_path.rsplit("/", 1)[1]
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 10_000})
    return [
        (r["action"], json.loads(r["detail"]))
        for r in rows
        if r["object_type"] == "notice" and r["object_id"] == notice_id
    ]


def test_the_most_specific_rule_applies() -> None:
    rules = ApprovalConfig.model_validate(
        {
            "approvers": 1,
            "severity": {"extreme": 3, "severe": 2},
            "departments": {"civil-affairs": {"approvers": 2, "severity": {"extreme": 4}}, "health": {}},
        }
    )
    cases = [
        ("civil-affairs", Severity.EXTREME, 4),  # the department's rule for the severity
        ("civil-affairs", Severity.SEVERE, 2),  # the county-wide rule for the severity
        ("civil-affairs", Severity.INFO, 2),  # the department's own default
        ("environment", Severity.EXTREME, 3),
        ("environment", Severity.INFO, 1),  # the default
        ("health", Severity.MINOR, 1),
    ]
    assert [(d, s, rules.required(d, s)) for d, s, _ in cases] == cases


def test_rules_are_checked_where_they_are_written(tmp_path: Any) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[approval]\napprovers = 0\noverride_roles = ["boss"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert f"approval.approvers ({path}:2)" in str(info.value)
    assert "approval.override_roles.0" in str(info.value)
    settings = load_settings(None, environ={"NOTIFIER_APPROVAL__SEVERITY": "{ severe = 2 }"})
    assert settings.approval.required("education", Severity.SEVERE) == 2


async def test_civil_affairs_needs_one_approver_for_an_ordinary_notice(api: Api) -> None:
    path = await submitted(api, CIVIL, "civ-issuer")
    status, body = await api.call("POST", path + "/approve", key="civ-approver")
    assert status == 200 and body["state"] == "approved", body
    assert (body["approvals"], body["approvals_required"]) == (1, 1)
    assert body["approved_at"] is not None and body["approval_overdue"] is False


async def test_a_severe_civil_affairs_notice_needs_two_distinct_approvers(api: Api) -> None:
    path = await submitted(api, {**CIVIL, "severity": "severe"}, "civ-issuer")
    status, body = await api.call("POST", path + "/approve", key="civ-approver", json={"comment": "一审同意"})
    assert status == 200 and body["state"] == "pending_approval", body
    assert (body["approvals"], body["approvals_required"]) == (1, 2) and body["approved_at"] is None
    status, body = await api.call("POST", path + "/approve", key="civ-approver")
    assert status == 409 and "distinct approvers" in body["detail"]  # the same approver counts once
    status, body = await api.call("POST", path + "/approve", key="civ-issuer")
    assert status == 403  # role
    status, body = await api.call("POST", path + "/approve", key="civ-approver2", json={"comment": "二审同意"})
    assert status == 200 and body["state"] == "approved", body
    assert [(d["decision"], d["comment"]) for d in body["decisions"]] == [
        ("approved", "一审同意"),
        ("approved", "二审同意"),
    ]
    actions = await audit_actions(api, path)
    assert [a for a, _ in actions] == ["notice.create", "notice.pending_approval", "notice.approval", "notice.approved"]
    approval, approved = actions[2][1], actions[3][1]
    assert (approval["approvals"], approval["approvals_required"]) == (1, 2)
    assert approved["before"] == {"state": "pending_approval"} and approved["after"] == {"state": "approved"}


async def test_the_author_is_never_one_of_the_approvers(api: Api) -> None:
    path = await submitted(api, {**CIVIL, "severity": "extreme"}, "civ-admin")
    assert (await api.call("POST", path + "/approve", key="civ-approver"))[1]["approvals"] == 1
    status, body = await api.call("POST", path + "/approve", key="civ-admin")
    assert status == 403 and "other than its author" in body["detail"]
    assert (await api.call("GET", path, key="civ-viewer"))[1]["state"] == "pending_approval"


async def test_the_rule_is_fixed_when_the_notice_is_submitted(api: Api, settings: Settings) -> None:
    path = await submitted(api, {**CIVIL, "severity": "severe"}, "civ-issuer")
    settings.approval.departments["civil-affairs"].severity[Severity.SEVERE] = 1
    status, body = await api.call("POST", path + "/approve", key="civ-approver")
    assert status == 200 and body["state"] == "pending_approval" and body["approvals_required"] == 2


async def test_the_override_is_refused_to_roles_the_config_does_not_name(api: Api) -> None:
    path = await submitted(api, ENV, "env-issuer")
    for key in ("env-issuer", "env-approver", "env-viewer"):
        status, body = await api.call("POST", path + "/override", key=key, json={"comment": "紧急"})
        assert status == 403 and "override" in body["detail"], (key, body)
    status, body = await api.call("POST", path + "/override", key="civ-admin", json={"comment": "紧急"})
    assert status == 404  # another department's notice
    status, body = await api.call("POST", path + "/override", key="env-admin")
    assert status == 422 and [e["loc"] for e in body["errors"]] == ["comment"]
    status, body = await api.call("GET", path)
    assert body["state"] == "pending_approval" and body["overridden_at"] is None and body["decisions"] == []
    assert [a for a, _ in await audit_actions(api, path)] == ["notice.create", "notice.pending_approval"]


async def test_only_an_extreme_alert_can_be_overridden(api: Api) -> None:
    path = await submitted(api, {**ENV, "severity": "severe"}, "env-issuer")
    status, body = await api.call("POST", path + "/override", key="env-admin", json={"comment": "紧急"})
    assert status == 403 and "extreme" in body["detail"]
    assert (await api.call("GET", path))[1]["state"] == "pending_approval"


async def test_an_override_sends_at_once_and_is_overdue_until_approved_after_the_fact(api: Api) -> None:
    path = await submitted(api, ENV, "env-issuer")
    status, body = await api.call(
        "POST", path + "/override", key="env-admin", json={"comment": "暴雨红色预警，来不及审批"}
    )
    assert status == 200, body
    assert body["state"] == "approved" and body["approval_overdue"] is True and body["approved_at"] is None
    assert body["overridden_by"].startswith("apikey:") and body["overridden_at"]
    assert [d["decision"] for d in body["decisions"]] == ["overridden"]
    notice_id = body["id"]

    async def overdue_ids(flag: str) -> list[int]:
        status, listing = await api.call("GET", f"/api/v1/notices?overdue_approval={flag}", key="env-viewer")
        assert status == 200, listing
        return [n["id"] for n in listing["items"]]

    assert await overdue_ids("true") == [notice_id] and notice_id not in await overdue_ids("false")
    assert (await api.call("GET", "/api/v1/notices?overdue_approval=true", key="civ-admin"))[1]["items"] == []

    status, body = await api.call("POST", path + "/approve", key="env-admin")
    assert status == 403 and "override" in body["detail"]  # who overrode does not approve it too
    status, body = await api.call("POST", path + "/approve", key="env-issuer")
    assert status == 403  # the author's role may not approve
    status, body = await api.call("POST", path + "/reject", key="env-approver", json={"comment": "不同意"})
    assert status == 409  # already sent: a rejection cannot stop it (a cancel can)
    status, body = await api.call("POST", path + "/approve", key="env-approver", json={"comment": "事后审核同意"})
    assert status == 200 and body["approval_overdue"] is True and body["approvals"] == 1  # two are needed
    status, body = await api.call("POST", path + "/approve", key="env-approver2")
    assert status == 200 and body["approval_overdue"] is False and body["approved_at"] is not None, body
    assert [(d["decision"], d["after_the_fact"]) for d in body["decisions"]] == [
        ("overridden", False),
        ("approved", True),
        ("approved", True),
    ]
    assert await overdue_ids("true") == [] and notice_id in await overdue_ids("false")
    assert (await api.call("POST", path + "/approve", key="env-approver"))[0] == 409

    actions = dict(await audit_actions(api, path))
    assert actions["notice.overridden"]["comment"] == "暴雨红色预警，来不及审批"
    assert actions["notice.overridden"]["before"] == {"state": "pending_approval", "approval_overdue": False}
    assert actions["notice.overridden"]["after"] == {"state": "approved", "approval_overdue": True}
    assert actions["notice.approved_after_the_fact"]["after"] == {"approval_overdue": False}


async def test_a_draft_can_be_overridden_by_the_role_named(api: Api, settings: Settings) -> None:
    settings.approval.override_roles = [Role.ISSUER]
    status, body = await api.call("POST", "/api/v1/notices", json=ENV, key="env-issuer")
    path = f"/api/v1/notices/{body['id']}"
    status, body = await api.call("POST", path + "/override", key="env-admin", json={"comment": "紧急"})
    assert status == 403  # admin is no longer named
    status, body = await api.call("POST", path + "/override", key="env-issuer", json={"comment": "紧急"})
    assert status == 200 and body["state"] == "approved" and body["approvals_required"] == 2
    assert body["submitted_at"] is not None
    status, body = await api.call("POST", path + "/override", key="env-issuer", json={"comment": "再来"})
    assert status == 409


async def test_approvals_before_a_rejection_do_not_count_after_resubmission(api: Api) -> None:
    severe = {**CIVIL, "severity": "severe"}
    path = await submitted(api, severe, "civ-issuer")
    assert (await api.call("POST", path + "/approve", key="civ-approver"))[1]["approvals"] == 1
    status, body = await api.call("POST", path + "/reject", key="civ-approver2", json={"comment": "范围不对"})
    assert status == 200 and body["state"] == "rejected"
    status, body = await api.call("PUT", path, key="civ-issuer", json={**severe, "title": "低保资格年审通知（更正）"})
    assert status == 200 and body["state"] == "draft", body
    status, body = await api.call("POST", path + "/submit", key="civ-issuer")
    assert status == 200 and body["approvals"] == 0, body
    status, body = await api.call("POST", path + "/approve", key="civ-approver")
    assert status == 200 and body["state"] == "pending_approval" and body["approvals"] == 1, body
    status, body = await api.call("POST", path + "/approve", key="civ-approver2")
    assert status == 200 and body["state"] == "approved", body
