"""The database locked by someone else: another real sqlite3 connection holds ``BEGIN EXCLUSIVE`` on the file.

SQLite makes a writer wait up to its busy timeout (10 s, ``notifier.store.sqlite``) and then answers
"database is locked": within the timeout the engine just waits; past it, a claim, a fan-out or the
recording of a batch fails, and the engine has to come back by itself once the lock is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved, resident
from tests.faults.conftest import counts, fault_settings, running, until

pytestmark = pytest.mark.sqlite_only(
    "SQLite's whole-file write lock and busy timeout; PostgreSQL locks rows, never the whole database"
)

RESIDENTS = 10


class ExclusiveLock:
    """A second connection to the database file, as a backup tool or a stuck migration would hold it."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def take(self) -> None:
        await asyncio.to_thread(self.conn.execute, "BEGIN EXCLUSIVE")

    async def release(self) -> None:
        await asyncio.to_thread(self.conn.execute, "COMMIT")
        await asyncio.to_thread(self.conn.close)


@contextlib.asynccontextmanager
async def exclusive_lock(path: Path) -> AsyncIterator[ExclusiveLock]:
    lock = ExclusiveLock(path)
    await lock.take()
    try:
        yield lock
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):  # released by the test already
            await lock.release()


def engine_complaints(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("notifier.engine") and r.levelno >= logging.WARNING]


def handed_over(channel: RecordingChannel) -> Counter[int]:
    return Counter(message.delivery_id for message in channel.messages)


async def test_lock_within_the_busy_timeout_only_delays_the_record(
    fault_store: Store, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the database for a second while a batch is at the gateway: the issuer sees
    the SMS ``sending`` a second longer, then ``sent``; nothing is logged above INFO, nothing sent twice."""
    settings = fault_settings(tmp_path, {"sms": {"kind": "sms", "type": "recording"}})
    channel = RecordingChannel("sms")
    for _ in range(RESIDENTS):
        await resident(fault_store)
    notice = await approved(fault_store)
    channel.hold()
    async with running(fault_store, settings, {"sms": channel}, clock):
        await channel.entered.wait()  # the batch is claimed and at the gateway
        async with exclusive_lock(tmp_path / "faults.db") as lock:
            channel.release()  # the gateway answers; recording now waits for the lock
            await asyncio.sleep(1.0)  # the fault: the lock is held for a second
            await lock.release()

        async def all_sent() -> bool:
            return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

        await until(all_sent, "every SMS recorded as sent once the lock is gone")

    assert set(handed_over(channel).values()) == {1} and len(handed_over(channel)) == RESIDENTS
    assert engine_complaints(caplog) == []


async def test_lock_past_the_busy_timeout_while_recording_sends_nobody_twice(
    fault_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stays locked longer than SQLite's busy timeout just as a batch comes back from the
    gateway, so writing its results fails with "database is locked". The issuer sees the SMS ``sending``
    while the lock lasts, a WARNING in the log, then every SMS ``sent``; each resident got the message
    once: the engine keeps the gateway's answers and writes them when it can, instead of sending the
    batch again after its lease (it used to send the whole batch twice). The engine runs on the real clock:
    its heartbeats, missed while the database is locked, must not make it take its own batch for a dead
    worker's."""
    settings = fault_settings(tmp_path, {"sms": {"kind": "sms", "type": "recording"}})
    channel = RecordingChannel("sms")
    for _ in range(RESIDENTS):
        await resident(fault_store)
    notice = await approved(fault_store)
    channel.hold()
    async with running(fault_store, settings, {"sms": channel}, time.time):
        await channel.entered.wait()
        async with exclusive_lock(tmp_path / "faults.db") as lock:
            channel.release()

            async def complained() -> bool:
                return bool(engine_complaints(caplog))

            await until(complained, "the engine reporting the locked database")
            await lock.release()

        async def all_sent() -> bool:
            return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

        await until(all_sent, "every SMS recorded as sent after the lock")

    assert len(handed_over(channel)) == RESIDENTS
    assert set(handed_over(channel).values()) == {1}


async def test_lock_past_the_busy_timeout_before_fan_out_is_waited_out(
    fault_store: Store, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is locked when the notice is approved and stays locked past the busy timeout: fan-out
    and claims fail ("database is locked", a WARNING). Once the lock is gone the engine, still running,
    fans out and sends: the issuer sees every SMS ``sent``, each resident once, with nobody restarting."""
    settings = fault_settings(tmp_path, {"sms": {"kind": "sms", "type": "recording"}})
    channel = RecordingChannel("sms")
    for _ in range(RESIDENTS):
        await resident(fault_store)
    notice = await approved(fault_store)
    async with exclusive_lock(tmp_path / "faults.db") as lock, running(
        fault_store, settings, {"sms": channel}, clock
    ):

        async def complained() -> bool:
            return bool(engine_complaints(caplog))

        await until(complained, "the engine reporting the locked database")
        assert channel.messages == []
        await lock.release()

        async def all_sent() -> bool:
            return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

        await until(all_sent, "every SMS sent once the lock is gone")

    assert set(handed_over(channel).values()) == {1} and len(handed_over(channel)) == RESIDENTS


def beat_and_queue(path: Path) -> tuple[list[float], int]:
    """The registered workers' last beats and the number of queued deliveries, read from the file."""
    with sqlite3.connect(path) as conn:
        beats = [row[0] for row in conn.execute("SELECT beat_at FROM workers")]
        queued = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'queued'").fetchone()[0]
    return beats, queued


async def test_a_stall_past_three_heartbeats_does_not_take_back_the_engines_own_batch(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """The engine's own heartbeats stop for longer than three beats while its batch is at the gateway (the
    database was locked, the machine stalled): when housekeeping looks next, the live engine must not take
    its own batch for a dead worker's, put it back in the queue and send it again. The issuer sees every SMS
    ``sent``; each resident got one message."""
    settings = fault_settings(
        tmp_path, {"sms": {"kind": "sms", "type": "recording"}}, heartbeat_seconds=30, lease_seconds=300
    )
    channel = RecordingChannel("sms")
    for _ in range(RESIDENTS):
        await resident(fault_store)
    notice = await approved(fault_store)
    channel.hold()
    async with running(fault_store, settings, {"sms": channel}, clock):
        await channel.entered.wait()  # the batch is at the gateway
        clock.advance(3 * 30 + 1)  # no beat for more than three beats

        async def housekeeping_looked() -> bool:  # it beat first, or took the batch back
            beats, queued = await asyncio.to_thread(beat_and_queue, tmp_path / "faults.db")
            return beats == [clock.now] or queued > 0

        await until(housekeeping_looked, "housekeeping's next pass after the stall")
        channel.release()

        async def all_sent() -> bool:
            return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

        await until(all_sent, "every SMS sent")

    assert set(handed_over(channel).values()) == {1} and len(handed_over(channel)) == RESIDENTS
