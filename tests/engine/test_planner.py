"""The planner's loop: fan-out of new notices never starves its other work (finishing notices, chores)."""

from __future__ import annotations

import asyncio
from typing import Any

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel

from .conftest import approved, resident

APPROVALS = 200


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

    finished = asyncio.Event()
    finish = engine_store.finish_notices

    async def finish_and_tell() -> list[int]:
        done = await finish()
        if first.id in done:
            finished.set()
        return done

    engine_store.claim_notice_for_fanout = claim_while_staff_approve  # type: ignore[method-assign]
    engine_store.finish_notices = finish_and_tell  # type: ignore[method-assign]
    engine = Engine(engine_store, engine_settings, dict(channels), jitter=lambda: 0.5)
    await engine.start()
    try:
        async with asyncio.timeout(60):
            await finished.wait()
    finally:
        await engine.stop()
    assert approvals < APPROVALS, "the notice was marked done only after the stream of approvals had ended"
