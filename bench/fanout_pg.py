"""Fan-out on PostgreSQL: deliveries created per second, beside a bare COPY of the very same rows.

A throwaway database on the server of ``NOTIFIER_BENCH_PG_DSN`` (else ``NOTIFIER_TEST_PG_DSN``, else
postgres@127.0.0.1:5432) is migrated and given the synthetic residents (``bench.population``, with COPY); one
approved notice to the whole county is fanned out by the engine (``fan_out_next``: per chunk of 2,000 ids,
set-based SQL that stages the chunk and inserts its deliveries on the server, nothing per row in Python).
Then the same rows, read back into a binary COPY file, are loaded again with a bare ``COPY ... FROM`` into the
same table under a second notice: the server's raw bulk-load rate for this table, its indexes and foreign
keys. The database is dropped at the end. ``--quick``: 20,000 residents instead of a million.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import Result, bench_settings, open_store, peak_rss_mb, skipped
from bench.fanout import COLUMNS, NOTICE
from bench.population import populate_postgres
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.fanout import fan_out_next
from notifier.testing import RecordingChannel

CHUNK = 2000


def server_dsn() -> str:
    return (
        os.environ.get("NOTIFIER_BENCH_PG_DSN")
        or os.environ.get("NOTIFIER_TEST_PG_DSN")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def measure(dsn: str, residents: int) -> tuple[int, float, int, float, float]:
    """(deliveries the engine created, its seconds, rows COPY loaded, their seconds, peak MB after fan-out)."""
    import asyncpg

    settings = bench_settings(Path("unused.db"), fanout_batch_size=CHUNK)
    settings.database.url = dsn
    store = await open_store(settings)
    try:
        await populate_postgres(dsn, residents)
        notice_in = NoticeIn.model_validate(NOTICE)
        notice, _ = await store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
        twin, _ = await store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
        await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in settings.channels})
        started = time.perf_counter()
        await fan_out_next(ctx)
        seconds = time.perf_counter() - started
        peak = peak_rss_mb()
    finally:
        await store.db.close()
    conn = await asyncpg.connect(dsn)
    try:
        created = await conn.fetchval("SELECT COUNT(*) FROM deliveries WHERE notice_id = $1", notice.id)
        await conn.execute("CHECKPOINT")  # the fan-out's dirty pages are not the COPY's to write
        with tempfile.TemporaryDirectory() as folder:
            rows = Path(folder) / "deliveries.copy"
            await conn.copy_from_query(
                f"SELECT {twin.id}::bigint, {COLUMNS} FROM deliveries WHERE notice_id = {notice.id}",
                output=str(rows),
                format="binary",
            )
            started = time.perf_counter()
            status = await conn.copy_to_table(
                "deliveries", source=str(rows), columns=["notice_id", *COLUMNS.split(", ")], format="binary"
            )
            copy_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return int(created), seconds, int(status.rsplit(" ", 1)[-1]), copy_seconds, peak


async def run_size(residents: int) -> list[Result]:
    import asyncpg

    server = server_dsn()
    name = f"notifier_bench_{secrets.token_hex(4)}"
    try:
        admin = await asyncpg.connect(server, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return [skipped("fanout_pg.rate", "deliveries/s", f"no PostgreSQL at {urlsplit(server).hostname}: {exc}")]
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            created, seconds, copied, copy_seconds, peak = await measure(with_database(server, name), residents)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    params = {"residents": residents, "deliveries": created, "chunk": CHUNK, "copied": copied}
    return [
        Result("fanout_pg.rate", created / seconds, "deliveries/s", copied / copy_seconds, params).emit(),
        Result("fanout_pg.peak_memory", peak, "MB", 200.0, {**params, "baseline": "target ceiling"}).emit(),
    ]


def run(quick: bool) -> list[Result]:
    sizes = [20_000] if quick else [1_000_000]
    results: list[Result] = []
    for size in sizes:
        results += asyncio.run(run_size(size))
    return results
