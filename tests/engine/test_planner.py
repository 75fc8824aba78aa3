"""The planner's loop: fan-out of new notices never starves its other work (finishing notices, chores)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel

from .conftest import approved, delivery_rows, make_settings, resident

APPROVALS = 200


def done_event(store: Store, notice_id: int) -> asyncio.Event:
    """An event set when the engine's ``finish_notices`` marks the notice done (the store's method wrapped)."""
    done = asyncio.Event()
    finish = store.finish_notices

    async def finish_and_tell() -> list[int]:
        finished = await finish()
        if notice_id in finished:
            done.set()
        return finished

    store.finish_notices = finish_and_tell  # type: ignore[method-assign]
    return done


async def test_a_notice_is_done_while_other_notices_keep_being_approved(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel]
) -> None:
    """Office staff keep approving small notices through the API while a big one goes out: the big one
    must be marked done (and the chores run) between two fan-outs, not only once the approvals stop.
    Here a new notice is approved each time the planner looks for one, up to APPROVALS."""
    await resident(engine_store)
    first = await approved(engine_store)
    approvals = 0
    claim = engine_store.claim_notice_for_fanout

    async def claim_while_staff_approve(*args: Any) -> Any:
        nonlocal approvals
        if approvals < APPROVALS:
            approvals += 1
            await approved(engine_store, title=f"道路施工通知{approvals}")
        return await claim(*args)

    finished = done_event(engine_store, first.id)
    engine_store.claim_notice_for_fanout = claim_while_staff_approve  # type: ignore[method-assign]
    engine = Engine(engine_store, engine_settings, dict(channels), jitter=lambda: 0.5)
    await engine.start()
    try:
        async with asyncio.timeout(60):
            await finished.wait()
    finally:
        await engine.stop()
    assert approvals < APPROVALS, "the notice was marked done only after the stream of approvals had ended"


async def test_a_notice_is_marked_done_when_its_last_batch_is_recorded_not_at_the_next_poll(
    engine_store: Store, tmp_path: Path, channels: dict[str, RecordingChannel]
) -> None:
    """The worker that records a notice's last batch and finds nothing more to claim wakes the planner, which
    marks the notice done then; with an hour's poll interval the planner would otherwise sleep through it."""
    for _ in range(3):
        await resident(engine_store)
    notice = await approved(engine_store)
    sms = channels["sms-main"]
    sms.hold()  # the batch goes out only once the planner has fanned out and gone to sleep
    engine = Engine(engine_store, make_settings(tmp_path, poll_interval=3600), dict(channels), jitter=lambda: 0.5)
    planner_asleep = asyncio.Event()
    idle = engine._idle

    async def watched_idle(seconds: float, wakeup: asyncio.Event) -> None:
        if wakeup is engine._plan_wakeup:
            planner_asleep.set()
        await idle(seconds, wakeup)

    done = done_event(engine_store, notice.id)
    engine._idle = watched_idle  # type: ignore[method-assign]
    await engine.start()
    try:
        async with asyncio.timeout(30):
            await planner_asleep.wait()
            sms.release()
            await done.wait()
    finally:
        await engine.stop()
    assert [d["state"] for d in await delivery_rows(engine_store, notice.id)] == ["sent"] * 3
    assert len(sms.messages) == 3
