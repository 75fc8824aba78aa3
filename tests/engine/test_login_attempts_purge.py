"""Staff login attempts carry the client's address: housekeeping forgets them after a day (fake clock),
while the throttle's 15-minute window still counts the recent ones."""

from __future__ import annotations

from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock

DAY = 86400.0


async def test_login_attempts_older_than_a_day_are_forgotten(
    engine: Engine, engine_store: Store, clock: FakeClock
) -> None:
    now = clock()
    await engine_store.note_login_attempt("civ-1", "198.51.100.7", succeeded=False, now=now - 2 * DAY)
    await engine_store.note_login_attempt("civ-1", "198.51.100.7", succeeded=False, now=now - DAY + 60)
    await engine_store.note_login_attempt("civ-1", "198.51.100.7", succeeded=False, now=now - 60)
    before = await engine_store.login_failures("civ-1", "198.51.100.7", since=0)
    assert (before.by_login, before.by_client) == (3, 3)
    await engine.run_until_idle()
    after = await engine_store.login_failures("civ-1", "198.51.100.7", since=0)
    assert (after.by_login, after.by_client) == (2, 2)
    recent = await engine_store.login_failures("civ-1", "198.51.100.7", since=now - 15 * 60)
    assert (recent.by_login, recent.by_client) == (1, 1)
