"""A channel's rate limit holds across processes: three ``notifier worker`` processes over one database
send, together, what the alias's configured rate allows, measured over a minute by the sink's receive
times (``engine.shared_ratelimit``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.engine.conftest import approved, seeded_store
from tests.scale.workers import populated_database, start_worker, stop_all, timed_sink, write_config

RATE = 30.0  # messages per second, for the alias, whatever the number of processes
WINDOW = 60.0  # seconds measured, from the first message the sink receives
PROCESSES = 3
RESIDENTS = 3000  # more than the window lets through, so every worker has work to the end


@pytest.mark.slow
@pytest.mark.timeout(WINDOW * 4)
async def test_three_workers_together_keep_one_rate(tmp_path: Path) -> None:
    db_url = await populated_database(tmp_path, RESIDENTS)
    async with seeded_store(db_url) as store:
        await approved(store, target={"topics": ["air-quality"]})
    async with timed_sink(window=WINDOW, until=RESIDENTS) as sink:
        config = write_config(
            tmp_path / "config.toml",
            db_url,
            sink,
            engine={"workers": 2, "batch_size": 50, "poll_interval": 0.05, "lease_seconds": 30},
            channel={"rate_per_second": RATE},
        )
        workers = [await start_worker(config) for _ in range(PROCESSES)]
        try:
            await asyncio.wait_for(sink.reached.wait(), WINDOW * 3)
        finally:
            await stop_all(workers)
    sent = sink.count_within(WINDOW)
    allowed = RATE * WINDOW
    print(f"{PROCESSES} processes sent {sent} messages in {WINDOW:.0f} s at a limit of {allowed:.0f}"
          f" ({sent / allowed:.3f} of it)")
    # the bucket starts full (one second's worth), so a whole minute may hold RATE * (WINDOW + 1)
    assert 0.9 * allowed <= sent <= 1.1 * allowed
