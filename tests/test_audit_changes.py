"""What changed, in the audit log: before and after of every change to a resident (personal fields masked),
of API keys and of every state a notice passes through; read back through GET /api/v1/audit, and the chain
still verifies."""

from __future__ import annotations

import time
from typing import Any

from notifier import approval
from notifier.config import ChannelConfig, Settings
from notifier.domain.enums import ChannelKind, Role
from notifier.domain.models import NoticeIn
from notifier.engine import Engine
from notifier.engine.optouts import OptOutReply, apply_opt_out
from notifier.testing import RecordingChannel
from tests.conftest import VILLAGE_A1, VILLAGE_B1, Api
from tests.databases import run_sql
from tests.test_cli import run_cli

PHONE, NEW_PHONE, EMAIL, OPENID = "+8619912340001", "+8619912340002", "wang.xiuying@example.org", "oAbCdEfGh123456"


async def entries(api: Api, action: str) -> list[dict[str, Any]]:
    status, page = await api.call("GET", f"/api/v1/audit?action={action}&limit=500", key="env-admin")
    assert status == 200, page
    return list(page["items"])


async def test_a_residents_changes_are_recorded_before_and_after_with_personal_fields_masked(
    api: Api, settings: Settings
) -> None:
    body = {"name": "王秀英", "phone": PHONE, "email": EMAIL, "wechat_openid": OPENID, "area_code": VILLAGE_A1}
    status, resident = await api.call("POST", "/api/v1/subscribers", json={**body, "topics": ["air-quality"]})
    assert status == 201, resident
    path = f"/api/v1/subscribers/{resident['id']}"
    change = {"phone": NEW_PHONE, "area_code": VILLAGE_B1, "consent_withdrawn": True, "opt_out_channels": ["email"]}
    assert (await api.call("PATCH", path, json=change))[0] == 200
    assert (await api.call("PATCH", path, json={"language": "zh"}))[0] == 200  # no change
    assert (await api.call("DELETE", path))[0] == 204

    [created] = await entries(api, "subscriber.create")
    assert created["detail"]["before"] == {}
    after = created["detail"]["after"]
    assert (after["name"], after["phone"], after["email"]) == ("王*英", "199****0001", "w***@example.org")
    assert after["wechat_openid"] == "oA***56" and after["area_code"] == VILLAGE_A1
    assert after["topics"] == ["air-quality"] and "consent_withdrawn_at" not in after  # empty fields left out

    first, second = await entries(api, "subscriber.update")
    assert first["detail"]["before"] == {
        "phone": "199****0001",
        "area_code": VILLAGE_A1,
        "consent_withdrawn_at": None,
        "opt_out_channels": [],
    }
    assert set(first["detail"]["after"]) == {"phone", "area_code", "consent_withdrawn_at", "opt_out_channels"}
    assert first["detail"]["after"]["phone"] == "199****0002" and first["detail"]["after"]["opt_out_channels"] == [
        "email"
    ]
    assert first["detail"]["after"]["consent_withdrawn_at"] is not None
    assert second["detail"]["before"] == second["detail"]["after"] == {}  # asked, nothing changed

    [erased] = await entries(api, "subscriber.delete")
    assert erased["detail"]["before"]["name"] == "王*英" and erased["detail"]["before"]["phone"] == "199****0002"
    assert erased["detail"]["after"] == {"erased": True}

    text = "\n".join(row["detail"] for row in await run_sql(api.store.db, "SELECT detail FROM audit_log"))
    for personal in ("王秀英", PHONE[3:], NEW_PHONE[3:], EMAIL, OPENID):
        assert personal not in text, personal
    code, out, err = await run_cli("audit", "verify", db_url=settings.database.url)
    assert code == 0 and "intact" in out, err


async def test_an_sms_opt_out_records_the_channels_before_and_after(api: Api) -> None:
    body = {"name": "李四", "phone": PHONE, "area_code": VILLAGE_A1, "topics": ["air-quality"]}
    status, resident = await api.call("POST", "/api/v1/subscribers", json=body)
    assert status == 201
    await apply_opt_out(api.store, OptOutReply(PHONE, "sms", "TD", time.time()))
    [entry] = await entries(api, "subscriber.optout")
    assert entry["object_id"] == str(resident["id"]) and entry["actor"] == "sms-reply"
    assert entry["detail"]["before"] == {"opt_out_channels": []}
    assert entry["detail"]["after"] == {"opt_out_channels": ["sms"]}


async def test_api_key_creation_and_revocation_record_before_and_after(api: Api) -> None:
    status, keys = await api.call("GET", "/api/v1/apikeys?department=civil-affairs", key="env-admin")
    prefix = next(k["prefix"] for k in keys["items"] if k["role"] == "viewer")
    status, _ = await api.call("POST", f"/api/v1/apikeys/{prefix}/revoke", key="env-admin")
    assert status == 200
    [revoked] = await entries(api, "apikey.revoke")
    assert revoked["detail"]["before"] == {"revoked": False} and revoked["detail"]["after"] == {"revoked": True}
    assert revoked["detail"]["prefix"] == prefix
    created = [e for e in await entries(api, "apikey.create") if e["detail"]["prefix"] == prefix]
    assert created[0]["detail"]["after"]["role"] == "viewer"
    assert created[0]["detail"]["after"]["department"] == "civil-affairs"
    assert "secret" not in str(created[0]["detail"]).lower()


async def test_every_state_a_notice_passes_through_is_recorded_from_and_to(api: Api, settings: Settings) -> None:
    store = api.store
    body = {"name": "张三", "phone": PHONE, "area_code": VILLAGE_A1, "topics": ["air-quality"], "channels": ["sms"]}
    assert (await api.call("POST", "/api/v1/subscribers", json=body))[0] == 201
    issuer, _ = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
    approver, _ = await store.create_api_key(department="environment", role=Role.APPROVER, name="a", actor="t")
    payload = {"topic": "air-quality", "title": "提示", "body": "注意。", "target": {"areas": [VILLAGE_A1]}}
    notice, _ = await store.create_notice(
        NoticeIn.model_validate({**payload, "channels": ["sms"]}),
        department="environment",
        created_by=issuer.id,
        actor="apikey:i",
    )
    notice = await approval.submit(store, settings.approval, issuer, notice)
    await approval.approve(store, settings.approval, approver, notice, "同意")
    config = settings.model_copy(deep=True)
    config.channels = {"sms": ChannelConfig(kind=ChannelKind.SMS, type="recording")}
    engine = Engine(store, config, {"sms": RecordingChannel("sms")})
    await engine.run_until_idle()
    await engine.run_until_idle()

    status, page = await api.call("GET", "/api/v1/audit?limit=500", key="env-admin")
    assert status == 200
    moves = [
        (e["action"], e["detail"]["before"]["state"], e["detail"]["after"]["state"])
        for e in page["items"]
        if e["object_type"] == "notice" and e["object_id"] == str(notice.id) and "before" in e["detail"]
    ]
    assert moves == [
        ("notice.pending_approval", "draft", "pending_approval"),
        ("notice.approved", "pending_approval", "approved"),
        ("notice.scheduled", "approved", "scheduled"),
        ("notice.sending", "scheduled", "sending"),
        ("notice.done", "sending", "done"),
    ]
    code, out, err = await run_cli("audit", "verify", db_url=settings.database.url)
    assert code == 0 and "intact" in out, err


async def test_a_cancel_records_the_state_it_stopped(api: Api) -> None:
    _, notice = await api.call(
        "POST",
        "/api/v1/notices",
        json={"topic": "air-quality", "title": "提示", "body": "注意。", "target": {"areas": [VILLAGE_A1]}},
    )
    path = f"/api/v1/notices/{notice['id']}"
    assert (await api.call("POST", path + "/submit"))[0] == 200
    assert (await api.call("POST", path + "/cancel", json={"reason": "重复"}))[0] == 200
    [entry] = await entries(api, "notice.cancelled")
    assert entry["detail"]["before"] == {"state": "pending_approval"}
    assert entry["detail"]["after"] == {"state": "cancelled"}
