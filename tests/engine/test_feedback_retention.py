"""Residents' feedback is personal data: housekeeping erases an item's text, contact, resident and answer
[feedback] keep_days after it was closed (after it came, when never closed), with one audit entry per item,
and keeps what the reports count (fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain.enums import Role
from notifier.domain.errors import Conflict
from notifier.domain.models import ApiKeyInfo
from notifier.engine import Engine
from notifier.engine.feedback import answer_feedback
from notifier.store import Store
from notifier.store.audit import AuditFilter
from notifier.store.feedback import NewFeedback
from notifier.testing import FakeClock
from tests.engine.conftest import resident

DAY = 86400.0


async def item(store: Store, received: datetime, subscriber_id: int, phone: str) -> int:
    return await store.add_feedback(
        NewFeedback(channel="form", text="村口路灯坏了，请修理。张三 13900000000", department="civil-affairs",
                    subscriber_id=subscriber_id, contact=phone, contact_name="张三", source_hash="ab" * 32),
        received=received, due=received + timedelta(hours=72), actor="test",
    )


async def erasures(store: Store) -> list[tuple[str, str | None, dict[str, object]]]:
    entries, _ = await store.list_audit(AuditFilter(action="feedback.erase"), None, 100)
    return sorted((e.actor, e.object_id, e.detail) for e in entries)


async def test_feedback_is_erased_after_retention_from_closing_or_receipt_and_still_counted(
    engine: Engine, engine_store: Store, clock: FakeClock
) -> None:
    person = await resident(engine_store)
    now = datetime.fromtimestamp(clock(), UTC)
    long_ago = now - timedelta(days=400)
    closed_id = await item(engine_store, long_ago, person.id, person.phone or "")
    await engine_store.answer_feedback(closed_id, "已安排维修。", None, "staff")
    await engine_store.close_feedback(closed_id, "已修好", "staff")  # closed now: kept 730 days from now
    open_id = await item(engine_store, long_ago, person.id, person.phone or "")  # never closed: 730 from receipt

    clock.advance(329 * DAY)
    await engine.run_until_idle()
    assert (await engine_store.get_feedback(open_id)).erased_at is None
    assert await erasures(engine_store) == []

    clock.advance(2 * DAY)  # 731 days after the open item came: erased; the closed one is kept
    await engine.run_until_idle()
    erased = await engine_store.get_feedback(open_id)
    assert erased.erased_at is not None and erased.erased_after_days == 730
    assert (erased.contact, erased.contact_name, erased.subscriber_id, erased.answer) == (None, None, None, None)
    assert erased.text == "erased after 730 days"
    assert (erased.state.value, erased.department, erased.category.value) == ("open", "civil-affairs", "opinion")
    assert erased.received_at == long_ago
    kept = await engine_store.get_feedback(closed_id)
    assert kept.erased_at is None and kept.contact == person.phone and kept.answer == "已安排维修。"
    row = await engine_store.db.fetch_one("get_feedback", {"id": open_id})
    assert row is not None and row["text"] == "" and row["source_hash"] is None
    with pytest.raises(Conflict):  # nobody to answer, and no new personal data on an erased item
        await answer_feedback(engine_store, ApiKeyInfo.model_validate(
            {"id": 1, "department": "civil-affairs", "role": "issuer", "name": "k"}),
            "staff", erased, "答复")

    clock.advance(400 * DAY)  # 731 days after the closed one was closed: erased, outcome and times kept
    await engine.run_until_idle()
    closed = await engine_store.get_feedback(closed_id)
    assert closed.erased_at is not None and closed.answer is None and closed.contact is None
    assert (closed.state.value, closed.outcome, closed.answered_at is not None) == ("closed", "已修好", True)
    clock.advance(DAY)
    await engine.run_until_idle()
    assert await erasures(engine_store) == [
        ("engine", str(closed_id), {"department": "civil-affairs", "keep_days": 730}),
        ("engine", str(open_id), {"department": "civil-affairs", "keep_days": 730}),
    ]
    rows = await engine_store.feedback_report_rows(long_ago - timedelta(days=1), long_ago + timedelta(days=1), None)
    assert [(r["department"], r["answered_at"] is not None) for r in rows] == [
        ("civil-affairs", True), ("civil-affairs", False)
    ]


async def test_the_reply_notice_that_carried_an_answer_loses_it_with_the_item(
    engine: Engine, engine_store: Store, clock: FakeClock
) -> None:
    person = await resident(engine_store)
    answered_on = datetime.fromtimestamp(clock(), UTC)
    item_id = await item(engine_store, answered_on, person.id, person.phone or "")
    key, _ = await engine_store.create_api_key(department="civil-affairs", role=Role.ISSUER, name="民政", actor="t")
    answer = "已安排维修，王五 13700000000 明天上门。"
    reply_id = await answer_feedback(engine_store, key, "staff", await engine_store.get_feedback(item_id), answer)
    assert reply_id is not None
    await engine.run_until_idle()  # the reply goes out to the resident
    assert (await engine_store.get_notice(reply_id)).state.value == "done"
    await engine_store.close_feedback(item_id, "已修好", "staff")

    clock.advance(731 * DAY)
    await engine.run_until_idle()
    assert (await engine_store.get_feedback(item_id)).erased_at is not None
    reply = await engine_store.get_notice(reply_id)  # still readable, and counted as sent
    assert reply.body == "" and reply.state.value == "done"
    assert await engine_store.rendered_messages(reply_id) == {}
    assert await engine_store.delivery_counts(reply_id) == {"sms": {"sent": 1}}
    entries, _ = await engine_store.list_audit(AuditFilter(action="notice.erase"), None, 10)
    assert [(e.object_id, e.detail) for e in entries] == [
        (str(reply_id), {"answers_feedback": item_id, "erased": ["body", "renderings"]})
    ]
    assert (await engine_store.get_feedback(item_id)).answer is None
