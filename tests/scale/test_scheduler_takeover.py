"""One scheduler at a time across ``notifier worker`` processes on PostgreSQL (``engine.leadership``): the
first process leads and fires the recurring notice's missed slot; a second stands by; when the leader is
SIGKILLed the second takes the lead within seconds, catches up, and the slot is not fired again (each slot is
one row of ``job_runs``, whatever the number of leaders)."""

from __future__ import annotations

import asyncio
import signal
import time
from asyncio.subprocess import Process
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.domain.models import NoticeIn
from tests.databases import postgres_database, run_sql
from tests.engine.conftest import approved_series, resident, seeded_store
from tests.scale.workers import start_worker, stop_all, timed_sink, write_config

LEADS = "this process now leads the scheduling"
STANDS_BY = "another process leads the scheduling; this one stands by"
TAKEOVER_LIMIT = 15.0
DIGEST = NoticeIn.model_validate(
    {"topic": "air-quality", "title": "每周空气质量", "body": "本周空气良好。", "target": {"areas": ["370725"]},
     "channels": ["sms"]}
)


async def logged(process: Process, wanted: str) -> None:
    """Return once the process logs a line ending with ``wanted`` (its log goes to stderr)."""
    assert process.stderr is not None
    while True:
        line = await process.stderr.readline()
        assert line, f"the process ended before logging {wanted!r}"
        if line.decode().rstrip().endswith(wanted):
            return


@pytest.mark.peer("postgres")
@pytest.mark.timeout(120)
async def test_a_killed_scheduler_leader_is_replaced_and_the_slot_fires_once(tmp_path: Path) -> None:
    db_url = postgres_database()
    async with seeded_store(db_url) as store, timed_sink() as sink:
        await resident(store)
        series = await approved_series(store, DIGEST, cron="* * * * *")
        approved_at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        await run_sql(store.db, "UPDATE recurring_notices SET approved_at = ? WHERE id = ?", [approved_at, series])
        config = write_config(tmp_path / "config.toml", db_url, sink, engine={"workers": 1, "poll_interval": 0.1},
                              channel={})
        first = await start_worker(config, log=True)
        second = None
        try:
            await asyncio.wait_for(logged(first, LEADS), 60)
            await asyncio.wait_for(sink.served(1), 60)  # the slot missed while nobody led, fired by the leader
            second = await start_worker(config, log=True)
            await asyncio.wait_for(logged(second, STANDS_BY), 60)
            first.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await first.wait()
            await asyncio.wait_for(logged(second, LEADS), TAKEOVER_LIMIT)
            print(f"\nthe standby led {time.monotonic() - killed_at:.2f} s after the leader was killed")
        finally:
            await stop_all([p for p in (first, second) if p is not None])
        # the new leader caught up without firing the first slot again (a slot of a minute that began meanwhile
        # may have been fired, once): one notice per slot, and no more messages than notices
        fired = await run_sql(store.db, "SELECT job_key FROM job_runs")
        notices = await run_sql(store.db, "SELECT idempotency_key FROM notices WHERE idempotency_key LIKE ?",
                                [f"recurring-{series}-%"])
    keys = [row["idempotency_key"] for row in notices]
    assert len(keys) == len(set(keys)) == len(fired) >= 1
    assert 1 <= len(sink.times) <= len(keys)
