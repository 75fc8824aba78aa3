"""SMS rate on PostgreSQL: ``bench.sms``'s engine-versus-raw-client comparison with the store on PostgreSQL.

The very workload of ``bench.sms`` (the same residents, notice, Kannel adapter settings, worker count, batch
size, sink process and message counts), with one difference: each engine round runs on a throwaway database
on the PostgreSQL server of ``NOTIFIER_BENCH_PG_DSN`` (else ``NOTIFIER_TEST_PG_DSN``, else
postgres@127.0.0.1:5432), created with byte-wise collation as docs/storage.md requires, migrated, given the
residents with COPY (``bench.population.populate_postgres``) and dropped after the round. The baseline is the
bare aiohttp client (``bench.sms.raw_rate``) to the same sink, measured in the same run, interleaved with the
engine rounds (engine, raw, engine, raw, ...; the median of three each, one with ``--quick``). Apprise is left
out: it does not touch the database, so ``bench.sms`` already measures it.

Record: ``sms_pg.engine`` (baseline: raw). Target (issue 12): at least 0.7 x raw, as on SQLite. The 1-minute
load average after each round is in the params: on a shared machine the ratio is only indicative.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    Result,
    channel_settings,
    checked_send_rate,
    client_and_sink_apart,
    median,
    rounds,
    sampling,
    skipped,
)
from bench.fanout_pg import server_dsn, with_database
from bench.population import populate_postgres
from bench.sinks import Sink, sink_process
from bench.sms import BATCH, CONNECTIONS, RAW_IN_FLIGHT, WORKERS, cost_params, kannel_channel, raw_rate
from notifier.store import open_database


async def engine_rate(sink: Sink, server: str, count: int) -> tuple[float, dict[str, float]]:
    """Messages per second of the engine on a fresh PostgreSQL database, dropped afterwards, and the processor
    time a message cost (``bench.common.checked_send_rate``) and the write-ahead log it wrote (``wal_bytes``: the whole
    server's, so only a figure with no other work on the server)."""
    import asyncpg

    name = f"notifier_bench_sms_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server, timeout=10)
    try:
        await admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")
        try:
            url = with_database(server, name)
            channel = kannel_channel(sink)
            settings = channel_settings(Path("unused.db"), "sms", channel, workers=WORKERS, batch_size=BATCH)
            settings.database.url = url
            db = await open_database(url)
            try:
                await db.migrate()
            finally:
                await db.close()
            await populate_postgres(url, count)
            wal_before = await admin.fetchval("SELECT pg_current_wal_lsn()")
            rate, cost = await checked_send_rate(sink, settings, "sms", count)
            wal = await admin.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal_before)
            return rate, {**cost, "wal_bytes": round(float(wal) / count)}
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def reachable(server: str) -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    import asyncpg

    try:
        conn = await asyncpg.connect(server, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL at {urlsplit(server).hostname}: {exc}"
    await conn.close()
    return None


def run(quick: bool) -> list[Result]:
    count = 2_000 if quick else 20_000
    raw_count = 5_000 if quick else 50_000
    server = server_dsn()
    problem = asyncio.run(reachable(server))
    if problem is not None:
        return [skipped("sms_pg.engine", "messages/s", problem).emit()]
    params: dict[str, Any] = {
        "database": "postgresql", "messages": count, "workers": WORKERS, "batch_size": BATCH,
        "max_connections": CONNECTIONS, "sink": "separate process", "raw_messages": raw_count,
        "raw_in_flight": RAW_IN_FLIGHT, "baseline": "raw aiohttp",
    }  # fmt: skip
    engine: list[float] = []
    raw: list[float] = []
    load: list[float] = []  # 1-minute load average after each round's engine and raw sides
    engine_costs: list[dict[str, float]] = []
    raw_costs: list[dict[str, float]] = []
    with sink_process("kannel") as sink, client_and_sink_apart(sink.pid) as placement:
        params.update(placement)
        for _ in range(rounds(quick)):
            rate, cost = asyncio.run(engine_rate(sink, server, count))
            engine.append(rate)
            engine_costs.append(cost)
            rate, cost = asyncio.run(raw_rate(sink, raw_count))
            raw.append(rate)
            raw_costs.append(cost)
            load.append(os.getloadavg()[0])
    samples = {"engine": engine, "raw": raw, "load_average": load}
    wal = median([cost["wal_bytes"] for cost in engine_costs])
    params.update({**sampling(samples), **cost_params(engine_costs, raw_costs), "wal_bytes_per_message": wal})
    return [Result("sms_pg.engine", median(engine), "messages/s", median(raw), params).emit()]
