"""An idle ``notifier worker`` process starts on a notice approved elsewhere at once, not at its next poll:
the approving process announces it (LISTEN / NOTIFY, ``engine.wakeups``). PostgreSQL only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from notifier.engine.wakeups import PostgresWorkSignals
from tests.databases import postgres_database
from tests.engine.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_B1, approved, resident, seeded_store
from tests.scale.workers import start_worker, stop_all, timed_sink, write_config

POLL = 30.0  # the worker's poll interval: far longer than the test waits
WAKE_LIMIT = 10.0  # seconds the test waits for the second notice's first message
PEOPLE = 10  # in each town


@pytest.mark.peer("postgres")
async def test_an_idle_worker_wakes_for_a_notice_approved_in_another_process(tmp_path: Path) -> None:
    db_url = postgres_database()
    signals = PostgresWorkSignals(db_url)
    async with seeded_store(db_url) as store, timed_sink() as sink:
        for village in (VILLAGE_A1, VILLAGE_B1):
            for _ in range(PEOPLE):
                await resident(store, village)
        await approved(store, target={"areas": [TOWN_A]})
        config = write_config(
            tmp_path / "config.toml", db_url, sink, engine={"workers": 1, "poll_interval": POLL}, channel={}
        )
        worker = await start_worker(config)
        try:
            # its first pass fans the first notice out and sends it; then it has nothing to do for POLL seconds
            await asyncio.wait_for(sink.served(PEOPLE), 60)
            await signals.start(lambda: None)
            await approved(store, target={"areas": [TOWN_B]})
            approved_at = time.monotonic()
            signals.announce()  # what engine.wake() does in the process that approved it
            await asyncio.wait_for(sink.served(PEOPLE + 1), WAKE_LIMIT)
            print(f"\nthe idle worker's first message {time.monotonic() - approved_at:.2f} s after the approval")
            await asyncio.wait_for(sink.served(2 * PEOPLE), 60)
        finally:
            await signals.stop()
            await stop_all([worker])
