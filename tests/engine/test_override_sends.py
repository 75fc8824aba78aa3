"""An overridden extreme alert goes out with no approval at all, and is approved after the fact."""

from __future__ import annotations

from notifier import approval
from notifier.config import ApprovalConfig
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.engine.conftest import COUNTY, resident

RULES = ApprovalConfig.model_validate({"approvers": 1, "severity": {"extreme": 2}, "override_roles": ["admin"]})


async def test_an_overridden_alert_is_sent_before_any_approval(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    people = [await resident(engine_store) for _ in range(3)]
    keys = {}
    for role in (Role.ISSUER, Role.ADMIN, Role.APPROVER):
        keys[role], _ = await engine_store.create_api_key(department="environment", role=role, name=role, actor="t")
    second, _ = await engine_store.create_api_key(department="environment", role=Role.APPROVER, name="2", actor="t")
    data = {"topic": "air-quality", "title": "红色预警", "body": "立即停课。", "severity": "extreme"}
    created, _ = await engine_store.create_notice(
        NoticeIn.model_validate({**data, "target": {"areas": [COUNTY]}, "channels": ["sms"]}),
        department="environment",
        created_by=keys[Role.ISSUER].id,
        actor="apikey:issuer",
    )
    notice = await approval.submit(engine_store, RULES, keys[Role.ISSUER], created)
    await engine.run_until_idle()
    assert channels["sms-main"].messages == []  # pending approval: nothing goes out

    notice = await approval.override(engine_store, RULES, keys[Role.ADMIN], notice, "来不及审批")
    await engine.run_until_idle()
    assert sorted(channels["sms-main"].recipients()) == sorted(p.phone for p in people)
    sent = await engine_store.get_notice(notice.id)
    assert sent.state is NoticeState.DONE and sent.approval_overdue and sent.approvals == 0

    await approval.approve(engine_store, RULES, keys[Role.APPROVER], sent, "同意")
    done = await approval.approve(engine_store, RULES, second, sent, None)
    assert done.state is NoticeState.DONE and not done.approval_overdue and done.approvals == 2
