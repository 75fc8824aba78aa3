"""Workers killed at random moments: several ``notifier worker`` processes over one PostgreSQL database send a
notice to tens of thousands of residents while the test SIGKILLs one at random moments and starts another. Every
resident is served; none twice beyond the batches in flight at the kills (counted and printed); the killed
worker's leases are taken back within seconds (its heartbeat stops; ``engine.heartbeat``), not after the
60 s lease."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import time
from asyncio.subprocess import Process
from pathlib import Path

import pytest

from notifier.store import Store, open_database
from tests.engine.conftest import approved, seeded_store
from tests.scale.workers import populated_database, start_worker, stop_all, timed_sink, until, write_config

RESIDENTS = 20_000
PROCESSES = 3
# a heartbeat a second: a worker is taken for dead after 3 s without one. At 0.5 s a live worker of a loaded
# 2-core machine (three workers, PostgreSQL and the sink on it) missed 1.5 s and lost its leases while sending
ENGINE = {"workers": 2, "batch_size": 50, "poll_interval": 0.1, "lease_seconds": 60, "heartbeat_seconds": 1.0}
KILLS = 3
TAKE_BACK_LIMIT = 20.0  # seconds the test waits for a dead worker's leases (a third of the lease)


def worker_prefix(process: Process) -> str:
    return f"{socket.gethostname()}:{process.pid}:"


async def registered(store: Store, processes: list[Process]) -> list[Process]:
    """The live processes whose engine has registered (and so may hold leases)."""
    ids = await store.registered_workers()
    return [p for p in processes if p.returncode is None and any(i.startswith(worker_prefix(p)) for i in ids)]


async def dead_worker_forgotten(store: Store, process: Process) -> None:
    """Return once no registered worker is the killed process (its leases went back with its registration)."""
    prefix = worker_prefix(process)

    async def forgotten() -> bool:
        return not any(worker.startswith(prefix) for worker in await store.registered_workers())

    await until(forgotten)


async def all_recorded(store: Store, notice_id: int) -> None:
    async def recorded() -> bool:
        return (await store.get_notice(notice_id)).counts == {"sms": {"sent": RESIDENTS}}

    await until(recorded)


@pytest.mark.slow
@pytest.mark.peer("postgres")
@pytest.mark.timeout(300)
async def test_killed_workers_lose_nobody_and_send_twice_only_their_batches(tmp_path: Path) -> None:
    db_url = await populated_database(tmp_path, RESIDENTS, postgres=True)
    async with seeded_store(db_url) as store:
        notice = await approved(store, target={"topics": ["air-quality"]})
    chance = random.Random()
    moments = sorted(chance.sample(range(RESIDENTS // 10, RESIDENTS * 8 // 10), KILLS))
    db = await open_database(db_url)
    store = Store(db)
    workers: list[Process] = []
    took_back: list[float] = []
    try:
        async with timed_sink(until=RESIDENTS) as sink:
            config = write_config(tmp_path / "config.toml", db_url, sink, engine=ENGINE, channel={})
            workers = [await start_worker(config) for _ in range(PROCESSES)]
            for moment in moments:
                await asyncio.wait_for(sink.served(moment), 60)
                victim = chance.choice(await registered(store, workers))
                victim.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await victim.wait()
                workers.append(await start_worker(config))
                await asyncio.wait_for(dead_worker_forgotten(store, victim), TAKE_BACK_LIMIT)
                took_back.append(time.monotonic() - killed_at)
            await asyncio.wait_for(sink.reached.wait(), 60)
            await asyncio.wait_for(all_recorded(store, notice.id), 60)
            await stop_all(workers)
    finally:
        await stop_all(workers, signal.SIGKILL)
        await db.close()
    in_flight_bound = KILLS * ENGINE["workers"] * ENGINE["batch_size"]
    print(
        f"\n{RESIDENTS} residents, {KILLS} workers killed after {moments} served;"
        f" leases taken back {', '.join(f'{t:.1f}' for t in took_back)} s after each kill;"
        f" {sink.duplicates} messages sent twice (the batches in flight at the kills: at most {in_flight_bound})"
    )
    assert len(sink.recipients) == RESIDENTS
    assert sink.duplicates <= in_flight_bound
