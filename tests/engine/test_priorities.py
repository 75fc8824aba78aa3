"""Quiet hours and priorities: info waits for the morning, severe and extreme go first and at once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved, resident

NIGHT = datetime(2025, 3, 1, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
NIGHT_QUIET = {"start": "22:00", "end": "07:00"}


async def test_info_waits_for_quiet_hours_to_end_but_an_extreme_alert_does_not(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    clock.now = NIGHT
    sleeper = await resident(engine_store, quiet_hours=NIGHT_QUIET)
    night_owl = await resident(engine_store)
    await approved(engine_store, title="info", severity="info")
    await approved(engine_store, title="flood", severity="extreme")

    await engine.run_until_idle()
    sent = [(m.recipient, m.subject) for m in channels["sms-main"].messages]
    assert sorted(sent) == sorted([(sleeper.phone, "flood"), (night_owl.phone, "flood"), (night_owl.phone, "info")])

    clock.advance(7.5 * 3600 - 1)  # 06:59:59
    await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 3
    clock.advance(1)  # 07:00
    await engine.run_until_idle()
    assert channels["sms-main"].messages[-1].recipient == sleeper.phone
    assert channels["sms-main"].messages[-1].subject == "info"


async def test_severe_alerts_jump_the_queue(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    engine.ctx.settings.engine.batch_size = 3
    for _ in range(3):
        await resident(engine_store)
    routine = await approved(engine_store, title="routine", severity="info")
    await approved(engine_store, title="storm", severity="severe")

    await engine.run_once()  # both fanned out; the first batch is all the severe alert

    assert [m.subject for m in channels["sms-main"].messages] == ["storm"] * 3
    assert channels["sms-main"].messages[0].priority == 8
    await engine.run_until_idle()
    assert [m.subject for m in channels["sms-main"].messages[3:]] == ["routine"] * 3
    assert routine.id < channels["sms-main"].messages[0].notice_id


async def test_rate_limit_spreads_a_burst_over_time(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    engine_settings.channels["sms-main"].rate_per_second = 2
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    for _ in range(5):
        await resident(engine_store)
    await approved(engine_store)

    await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 2
    clock.advance(1)
    await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 4


async def test_a_slow_channel_never_holds_up_another(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel]
) -> None:
    """Each alias has its own workers: while e-mail hangs, SMS still goes out (one worker per alias)."""
    engine_settings.engine.workers = 1
    engine_settings.engine.poll_interval = 0.05
    for _ in range(3):
        await resident(engine_store, email="r@example.org", channels=["email", "sms"])
    await approved(engine_store, channels=["email", "sms"], channel_mode="all")
    channels["email"].hold()
    slow_first = {"email": channels["email"], **{a: c for a, c in channels.items() if a != "email"}}
    engine = Engine(engine_store, engine_settings, slow_first)
    await engine.start()
    try:
        await asyncio.wait_for(channels["email"].entered.wait(), 10)
        async with asyncio.timeout(10):
            while len(channels["sms-main"].messages) < 3:  # noqa: ASYNC110 - the engine's workers fill it
                await asyncio.sleep(0.02)
        assert channels["email"].messages == []  # still held
    finally:
        channels["email"].release()
        await engine.stop()
    assert len(channels["email"].messages) == 3
