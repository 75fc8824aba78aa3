"""Recurring notices follow the approval rules: a series fires no slot until its approvers (as many as the rule
of its department and severity asks, never who wrote it) have approved it; each notice it issues records their
approvals; a revised series waits for approval again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier import approval
from notifier.config import ApprovalConfig, Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.errors import Conflict, Forbidden, NotFound
from notifier.domain.models import ApiKeyInfo, NoticeIn
from notifier.engine import Engine, add_recurring_notice
from notifier.engine.scheduling import fire_recurring, revise_recurring_notice
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import resident

RULES = ApprovalConfig.model_validate({"approvers": 1, "severity": {"severe": 2}})
WEEKLY = NoticeIn.model_validate({
    "topic": "air-quality", "title": "每周空气质量", "body": "本周空气良好。", "severity": "severe",
    "target": {"areas": ["370725"]}, "channels": ["sms"],
})  # fmt: skip
SLOT = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


async def _key(store: Store, role: Role, name: str, department: str = "environment") -> ApiKeyInfo:
    key, _ = await store.create_api_key(department=department, role=role, name=name, actor="t")
    return key


async def test_a_series_fires_only_once_its_approvers_approved_it(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    issuer = await _key(engine_store, Role.ISSUER, "起草")
    first, second = await _key(engine_store, Role.APPROVER, "王审核"), await _key(engine_store, Role.APPROVER, "赵审核")
    author = approval.actor_of(issuer)
    series = await add_recurring_notice(engine_store, RULES, WEEKLY, department="environment", cron="0 8 * * 1",
                                        actor=author)  # fmt: skip
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    row = await engine_store.get_recurring_notice(series)
    assert row["approvals_required"] == 2  # the rule for severe notices
    assert await fire_recurring(engine.ctx, row, SLOT) is None  # not approved: nothing is issued
    assert await engine_store.active_recurring_notices() == []

    with pytest.raises(Forbidden):  # an issuer does not approve
        await approval.approve_recurring(engine_store, issuer, series, None)
    own = await _key(engine_store, Role.APPROVER, "起草人的审核钥匙")
    with pytest.raises(Forbidden):  # nor does who wrote the series
        await approval.approve_recurring(engine_store, own, series, None, actor=author)
    with pytest.raises(NotFound):  # another department's approver does not see it
        await approval.approve_recurring(engine_store, await _key(engine_store, Role.APPROVER, "民政", "civil-affairs"),
                                         series, None)  # fmt: skip

    await approval.approve_recurring(engine_store, first, series, "同意")
    with pytest.raises(Conflict):  # each approver counts once
        await approval.approve_recurring(engine_store, first, series, "再次同意")
    assert await fire_recurring(engine.ctx, row, SLOT) is None  # one of two approvers
    await approval.approve_recurring(engine_store, second, series, None)

    [active] = await engine_store.active_recurring_notices()
    notice_id = await fire_recurring(engine.ctx, active, SLOT)
    assert notice_id is not None
    notice = await engine_store.get_notice(notice_id)
    assert notice.state is NoticeState.APPROVED and notice.approvals_required == 2
    assert notice.approved_at is not None and not notice.approval_overdue
    decided = [(d.decision, d.actor) for d in notice.decisions]
    assert decided == [("approved", approval.actor_of(first)), ("approved", approval.actor_of(second))]
    assert notice.decisions[0].comment == f"series {series} revision 1: 同意"
    await engine.run_until_idle()
    assert [m.subject for m in channels["sms-main"].messages] == ["每周空气质量"]


async def test_a_revised_series_needs_approval_again(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    rules = ApprovalConfig()
    first, second = await _key(engine_store, Role.APPROVER, "王审核"), await _key(engine_store, Role.APPROVER, "赵审核")
    series = await add_recurring_notice(engine_store, rules, WEEKLY, department="environment", cron="0 8 * * 1",
                                        actor="apikey:999")  # fmt: skip
    await approval.approve_recurring(engine_store, first, series, None)
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    [stale] = await engine_store.active_recurring_notices()  # what a scheduler read before the revision

    changed = WEEKLY.model_copy(update={"title": "每周空气质量（新）", "body": "下周有雾霾。"})
    revised = await revise_recurring_notice(engine_store, rules, series, changed, cron="0 9 * * 1", actor="apikey:999")
    assert revised["revision"] == 2 and revised["approved_at"] is None
    assert await fire_recurring(engine.ctx, stale, SLOT) is None  # the old approval does not cover the change
    assert await engine_store.active_recurring_notices() == []

    assert await engine_store.recurring_approvals(series, 2) == []  # revision 1's approval does not carry over
    with pytest.raises(Forbidden):  # who revised it does not approve it
        await engine_store.approve_recurring_notice(series, decider=second, actor="apikey:999", comment=None)
    await approval.approve_recurring(engine_store, second, series, "新内容同意")
    [active] = await engine_store.active_recurring_notices()
    assert active["cron"] == "0 9 * * 1"
    notice_id = await fire_recurring(engine.ctx, active, SLOT)
    assert notice_id is not None
    notice = await engine_store.get_notice(notice_id)
    assert notice.title == "每周空气质量（新）"
    assert [d.actor for d in notice.decisions] == [approval.actor_of(second)]  # revision 2's approver only
