"""Fan-out on PostgreSQL: deliveries created per second, beside a bare COPY of the very same rows.

A throwaway database on the server of ``NOTIFIER_BENCH_PG_DSN`` (else ``NOTIFIER_TEST_PG_DSN``, else
postgres@127.0.0.1:5432) is migrated and given the synthetic residents (``bench.population``, with COPY; then
vacuumed, so the first round does not pay for setting the residents' visibility bits). One approved notice to
the whole county is fanned out by the engine (``fan_out_next``: per chunk of the database's ``fanout_chunk``,
10,000 ids on PostgreSQL, one statement that matches, chooses and inserts on the server, nothing per row in
Python). The same rows, read back into a binary COPY file, are loaded with a bare ``COPY ... FROM`` into the
same table under a second notice: the server's raw bulk-load rate for this table, its indexes, foreign keys
and constraints.

Each side starts from the same state: ``deliveries`` emptied (``TRUNCATE``: an empty table and empty indexes
for both) and a ``CHECKPOINT`` (both pay the same full-page writes). The sides alternate in ``rounds()``
rounds, the first side swapped each round (engine, COPY, COPY, engine, engine, COPY), and each side's median
is reported with its samples, so a change of this shared machine's load falls on both; beside the rates, the
CPU seconds the database's server processes spent on each side (read from /proc when the server runs on
this machine), which other work on the machine does not inflate. The database is dropped at the end.
``--quick``: 20,000 residents and one round instead of a million and three.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import Result, bench_settings, median, open_store, peak_rss_mb, rounds, sampling, skipped
from bench.fanout import COLUMNS, NOTICE
from bench.population import populate_postgres
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from notifier.testing import RecordingChannel


def server_dsn() -> str:
    return (
        os.environ.get("NOTIFIER_BENCH_PG_DSN")
        or os.environ.get("NOTIFIER_TEST_PG_DSN")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


class ServerCpu:
    """CPU seconds of the server processes serving one database, from /proc (None where it cannot be read:
    a server on another machine)."""

    def __init__(self, admin: Any, database: str) -> None:
        self.admin = admin
        self.database = database

    async def seconds(self) -> float | None:
        pids = await self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database)
        try:
            return sum(process_ticks(int(row["pid"])) for row in pids) / os.sysconf("SC_CLK_TCK")
        except OSError:  # not this machine's process, not ours to read, or it just ended
            return None


def process_ticks(pid: int) -> int:
    """User and system CPU time of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def timed(cpu: ServerCpu, work: Callable[[], Awaitable[None]]) -> tuple[float, float | None]:
    """(real seconds, server CPU seconds) of ``work``."""
    before = await cpu.seconds()
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    after = await cpu.seconds()
    return seconds, None if before is None or after is None else after - before


async def fresh_deliveries(conn: Any) -> None:
    """Both sides start from an empty deliveries table and a checkpoint."""
    await conn.execute("TRUNCATE deliveries, receipts")
    await conn.execute("CHECKPOINT")


async def approved_notice(store: Store) -> int:
    notice, _ = await store.create_notice(
        NoticeIn.model_validate(NOTICE), department="environment", created_by=None, actor="bench"
    )
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
    return notice.id


async def measure(dsn: str, database: str, residents: int, quick: bool) -> dict[str, Any]:
    """Rates and CPU samples of both sides, and the peak memory after the fan-outs."""
    import asyncpg

    settings: Settings = bench_settings(Path("unused.db"))  # fanout_batch_size unset: the database's own
    settings.database.url = dsn
    store = await open_store(settings)
    conn = await asyncpg.connect(dsn)
    cpu = ServerCpu(conn, database)
    samples: dict[str, list[float]] = {"engine": [], "copy": []}
    cpu_samples: dict[str, list[float]] = {"engine": [], "copy": []}
    created = copied = 0
    try:
        await populate_postgres(dsn, residents)
        await conn.execute("VACUUM (FREEZE, ANALYZE)")
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in settings.channels})
        twin = await approved_notice(store)
        await conn.execute("UPDATE notices SET state = 'draft' WHERE id = $1", twin)  # not the engine's to fan out
        with tempfile.TemporaryDirectory() as folder:
            rows = Path(folder) / "deliveries.copy"

            async def fan_out_round() -> None:
                nonlocal created
                await fresh_deliveries(conn)
                notice = await approved_notice(store)

                async def work() -> None:
                    await fan_out_next(ctx)

                seconds, server = await timed(cpu, work)
                created = int(await conn.fetchval("SELECT COUNT(*) FROM deliveries WHERE notice_id = $1", notice))
                samples["engine"].append(created / seconds)
                if server is not None:
                    cpu_samples["engine"].append(server)
                if not rows.exists():
                    await conn.copy_from_query(
                        f"SELECT {twin}::bigint, {COLUMNS} FROM deliveries WHERE notice_id = {notice}",
                        output=str(rows),
                        format="binary",
                    )

            async def copy_round() -> None:
                nonlocal copied
                await fresh_deliveries(conn)
                status = ""

                async def work() -> None:
                    nonlocal status
                    status = await conn.copy_to_table(
                        "deliveries", source=str(rows), columns=["notice_id", *COLUMNS.split(", ")], format="binary"
                    )

                seconds, server = await timed(cpu, work)
                copied = int(status.rsplit(" ", 1)[-1])
                samples["copy"].append(copied / seconds)
                if server is not None:
                    cpu_samples["copy"].append(server)

            for round_ in range(rounds(quick)):  # the first round fans out first: it writes the COPY's rows
                sides = [fan_out_round, copy_round] if round_ % 2 == 0 else [copy_round, fan_out_round]
                for side in sides:
                    await side()
        peak = peak_rss_mb()
    finally:
        await conn.close()
        await store.db.close()
    chunk = store.db.fanout_chunk
    return {"created": created, "copied": copied, "chunk": chunk, "samples": samples, "cpu": cpu_samples, "peak": peak}


async def run_size(residents: int, quick: bool) -> list[Result]:
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
            found = await measure(with_database(server, name), name, residents, quick)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    samples, cpu = found["samples"], found["cpu"]
    params: dict[str, Any] = {
        "residents": residents, "deliveries": found["created"], "chunk": found["chunk"], "copied": found["copied"],
        **sampling(samples), "load_average": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    if len(cpu["engine"]) == len(samples["engine"]) and len(cpu["copy"]) == len(samples["copy"]):
        params["server_cpu_s_engine"] = [round(v, 1) for v in cpu["engine"]]
        params["server_cpu_s_copy"] = [round(v, 1) for v in cpu["copy"]]
        params["server_cpu_ratio"] = round(median(cpu["copy"]) / median(cpu["engine"]), 3)  # as the rates: copy/engine
    return [
        Result("fanout_pg.rate", median(samples["engine"]), "deliveries/s", median(samples["copy"]), params).emit(),
        Result(
            "fanout_pg.peak_memory", found["peak"], "MB", 200.0, {**params, "baseline": "target ceiling"}
        ).emit(),
    ]


def run(quick: bool) -> list[Result]:
    sizes = [20_000] if quick else [1_000_000]
    results: list[Result] = []
    for size in sizes:
        results += asyncio.run(run_size(size, quick))
    return results
