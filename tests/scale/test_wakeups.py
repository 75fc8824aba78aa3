"""New work announced by one engine wakes the others at once on PostgreSQL (``engine.wakeups``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from notifier.engine.wakeups import PostgresWorkSignals
from tests.databases import postgres_database


@pytest.fixture
def dsn() -> str:
    """A database of this test's own on the test server (skips when no server answers)."""
    return postgres_database(migrated=False)


@pytest.mark.peer("postgres")
async def test_an_announcement_wakes_the_other_listeners(dsn: str) -> None:
    channel = f"test_{uuid.uuid4().hex}"  # this test's alone
    announcer, listener = PostgresWorkSignals(dsn, channel), PostgresWorkSignals(dsn, channel)
    woken = asyncio.Event()
    await listener.start(woken.set)
    await announcer.start(lambda: None)
    try:
        woken.clear()  # set once on connecting: whatever was announced before it listened
        announcer.announce()
        await asyncio.wait_for(woken.wait(), 10)
        assert listener.received >= 1
        woken.clear()
        for _ in range(20):  # a burst of announcements: at most one notification in flight at a time
            announcer.announce()
        await asyncio.wait_for(woken.wait(), 10)
        assert announcer.sent <= 3  # the first, and one or two for the burst (one may start as another ends)
    finally:
        await announcer.stop()
        await listener.stop()


@pytest.mark.peer("postgres")
async def test_an_announcement_during_a_notify_in_flight_is_sent_after_it(dsn: str) -> None:
    """Work committed while a NOTIFY is on its way may be missed by the engine that wakes on that one: a second
    NOTIFY follows, on the same connection after the first (two at once on one connection fail)."""
    channel = f"test_{uuid.uuid4().hex}"
    announcer, listener = PostgresWorkSignals(dsn, channel), PostgresWorkSignals(dsn, channel)
    heard_two = asyncio.Event()
    await listener.start(lambda: heard_two.set() if listener.received >= 2 else None)
    await announcer.start(None)  # announcing only, as an API node
    try:
        announcer.announce()
        await asyncio.sleep(0)  # the first NOTIFY starts: it is in flight now
        announcer.announce()
        await asyncio.wait_for(heard_two.wait(), 10)
        await announcer.flush()  # heard before the announcer counted its second
        assert announcer.sent == 2 and announcer.received == 0
    finally:
        await announcer.stop()
        await listener.stop()
