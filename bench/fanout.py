"""Fan-out rate: deliveries created per second, beside a plain executemany of the same rows.

For each audience size a fresh SQLite file gets that many synthetic residents; one approved notice
to the whole county is fanned out by the engine (``fan_out_next``), then the very same rows are
inserted again with plain ``sqlite3.executemany`` into the same table (under another notice id):
the raw limit of the machine for this table and its indexes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import Result, bench_settings, open_store, peak_rss_mb
from bench.population import populate
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.fanout import fan_out_next
from notifier.testing import RecordingChannel

NOTICE = {
    "topic": "air-quality",
    "title": "bench",
    "body": "bench",
    "target": {"areas": ["370725"]},
    "channels": ["wechat", "sms", "email"],
}
COLUMNS = "subscriber_id, channel, alias, rank, state, priority, due_at, deadline, address, created_at, updated_at"


async def engine_fanout(path: Path) -> tuple[int, float, int]:
    """(deliveries created, seconds, notice id) for one notice to every resident."""
    settings = bench_settings(path)
    store = await open_store(settings)
    try:
        notice, _ = await store.create_notice(
            NoticeIn.model_validate(NOTICE), department="environment", created_by=None, actor="bench"
        )
        await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in settings.channels})
        started = time.perf_counter()
        await fan_out_next(ctx)
        elapsed = time.perf_counter() - started
        counts = await store.delivery_counts(notice.id)
        created = sum(n for states in counts.values() for n in states.values())
        return created, elapsed, notice.id
    finally:
        await store.db.close()


def raw_executemany(path: Path, notice_id: int) -> tuple[int, float]:
    """Insert the notice's rows again, under notice id + 1000, with plain executemany."""
    reader, writer = sqlite3.connect(path), sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA synchronous = NORMAL")
    rows = reader.execute(f"SELECT {COLUMNS} FROM deliveries WHERE notice_id = ?", (notice_id,))
    copy = ((notice_id + 1000, *row) for row in rows)
    started = time.perf_counter()
    writer.execute("BEGIN")
    cursor = writer.executemany(
        f"INSERT INTO deliveries (notice_id, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", copy
    )
    writer.execute("COMMIT")
    elapsed = time.perf_counter() - started
    count = cursor.rowcount
    reader.close()
    writer.close()
    return count, elapsed


def run_size(residents: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        asyncio.run(open_store_and_close(path))
        populate(str(path), residents)
        created, seconds, notice_id = asyncio.run(engine_fanout(path))
        peak = peak_rss_mb()
        raw_count, raw_seconds = raw_executemany(path, notice_id)
    params = {"residents": residents, "deliveries": created, "chunk": 2000}
    return [
        Result("fanout.rate", created / seconds, "deliveries/s", raw_count / raw_seconds, params).emit(),
        Result("fanout.peak_memory", peak, "MB", 200.0, {**params, "baseline": "target ceiling"}).emit(),
    ]


async def open_store_and_close(path: Path) -> None:
    store = await open_store(bench_settings(path))
    await store.db.close()


def run(quick: bool) -> list[Result]:
    sizes = [20_000, 50_000] if quick else [100_000, 1_000_000]
    return [result for size in sizes for result in run_size(size)]
