"""Scheduling: send_at notices start on time and once across restarts; recurring slots fire once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from notifier.config import ApprovalConfig, Settings
from notifier.domain.errors import InvalidInput
from notifier.domain.models import NoticeIn
from notifier.engine import Engine, add_recurring_notice
from notifier.engine.scheduling import fire_recurring
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved, approved_series, resident

RULES = ApprovalConfig()
DIGEST = NoticeIn.model_validate(
    {
        "topic": "air-quality",
        "title": "每周空气质量",
        "body": "本周空气良好。",
        "target": {"areas": ["370725"]},
        "channels": ["sms"],
    }
)


async def test_scheduled_notice_fires_once_after_a_restart(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    send_at = datetime.fromtimestamp(clock.now, UTC) + timedelta(minutes=10)
    notice = await approved(engine_store, send_at=send_at.isoformat())
    before = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    await before.run_until_idle()
    assert channels["sms-main"].messages == []  # not yet due

    clock.advance(600)  # the process was down at send_at; a new one starts after it
    after = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    await after.run_until_idle()
    await before.run_until_idle()  # a second process finds nothing left to do

    assert len(channels["sms-main"].messages) == 1
    assert channels["sms-main"].messages[0].notice_id == notice.id


async def test_running_engine_starts_a_scheduled_notice_on_time(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel]
) -> None:
    await resident(engine_store)
    send_at = datetime.now(UTC) + timedelta(seconds=0.3)
    await approved(engine_store, send_at=send_at.isoformat())
    engine = Engine(engine_store, engine_settings, dict(channels))
    await engine.start()
    try:
        async with asyncio.timeout(10):
            await channels["sms-main"].entered.wait()
    finally:
        await engine.stop()
    assert datetime.now(UTC) >= send_at
    assert len(channels["sms-main"].messages) == 1
    assert channels["sms-main"].opened and channels["sms-main"].closed


async def test_a_recurring_slot_fires_once_however_many_schedulers_race(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    recurring_id = await approved_series(engine_store, DIGEST, cron="0 8 * * 1")
    row = (await engine_store.active_recurring_notices())[0]
    assert row["id"] == recurring_id
    engines = [Engine(engine_store, engine_settings, dict(channels), clock=clock) for _ in range(3)]
    slot = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)

    fired = await asyncio.gather(*(fire_recurring(e.ctx, row, slot) for e in engines))
    for engine in engines:
        await engine.run_until_idle()

    assert len([n for n in fired if n is not None]) == 1
    assert [m.subject for m in channels["sms-main"].messages] == ["每周空气质量"]


async def test_a_slot_missed_while_down_is_caught_up_once_on_start(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    await approved_series(engine_store, DIGEST, cron="* * * * *")
    clock.advance(150)  # two minute slots passed with no process running
    first = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    second = Engine(engine_store, engine_settings, dict(channels), clock=clock)

    assert len(await first.scheduler.catch_up()) == 1  # only the latest slot
    assert await second.scheduler.catch_up() == []
    await first.run_until_idle()
    assert len(channels["sms-main"].messages) == 1


async def test_a_recurring_notice_naming_an_unknown_template_or_missing_a_field_is_refused(
    engine_store: Store,
) -> None:
    """Before, it was registered and each firing was cancelled at fan-out, after the fact."""
    unknown = DIGEST.model_copy(update={"body": None, "template": "no-such-template"})
    with pytest.raises(InvalidInput) as refused:
        await add_recurring_notice(engine_store, RULES, unknown, department="environment", cron="0 8 * * 1", actor="a")
    assert [error.loc for error in refused.value.errors] == ["template"]
    lacking = DIGEST.model_copy(update={"body": None, "template": "heavy-pollution", "data": {"level": "橙色"}})
    with pytest.raises(InvalidInput) as refused:
        await add_recurring_notice(engine_store, RULES, lacking, department="environment", cron="0 8 * * 1", actor="a")
    assert sorted(error.loc for error in refused.value.errors) == ["data.measures", "data.start_date"]
    assert await engine_store.active_recurring_notices() == []
