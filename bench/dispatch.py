"""End to end: approval to the adapter, with a no-op adapter and the real engine tasks.

A fresh database with synthetic residents; the engine runs (two workers, batches of 500); a notice
is approved and ``wake()`` called, as the API does. Measured: seconds from approval to the first
and to the last message handed to the adapter, and messages per second over that span. The
throughput baseline is plain sqlite3 doing the least a delivery needs, one UPDATE per message
(executemany, one transaction); latency is compared with the one-second target.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import Result, bench_settings, open_store
from bench.fanout import NOTICE
from bench.population import populate
from channels.base import Channel, OutboundMessage, SendResult, Sent
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine import Engine


class NoopChannel(Channel):
    """Accepts everything at once and notes when the first and last message arrived."""

    max_batch = 500

    def __init__(self, alias: str, expected: int) -> None:
        super().__init__(alias)
        self.expected, self.count = expected, 0
        self.first: float | None = None
        self.done = asyncio.Event()

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        self.first = self.first or time.perf_counter()
        self.count += len(batch)
        if self.count >= self.expected:
            self.done.set()
        return [Sent(str(m.delivery_id)) for m in batch]


async def end_to_end(path: Path, residents: int) -> tuple[float, float]:
    """(seconds to the first message, seconds to the last) after approval."""
    settings = bench_settings(path, workers=2, batch_size=500)
    store = await open_store(settings)
    channels = {alias: NoopChannel(alias, residents) for alias in settings.channels}
    notice_in = NoticeIn.model_validate({**NOTICE, "channels": ["sms"]})
    notice, _ = await store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
    engine = Engine(store, settings, dict(channels))
    await engine.start()
    try:
        await asyncio.sleep(0.2)  # idle, as a running service would be
        approved_at = time.perf_counter()
        await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
        engine.wake()
        await asyncio.wait_for(channels["sms"].done.wait(), timeout=600)
        last = time.perf_counter()
    finally:
        await engine.stop()
        await store.db.close()
    return (channels["sms"].first or last) - approved_at, last - approved_at


def raw_updates(path: Path) -> float:
    """Messages per second of plain sqlite3: one UPDATE per delivery, in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    ids = [row[0] for row in conn.execute("SELECT id FROM deliveries")]
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("UPDATE deliveries SET state = 'delivered', updated_at = 'x' WHERE id = ?", ((i,) for i in ids))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(ids) / elapsed


def run(quick: bool) -> list[Result]:
    residents = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        asyncio.run(_migrate(path))
        populate(str(path), residents)
        first, last = asyncio.run(end_to_end(path, residents))
        raw = raw_updates(path)
    params = {"residents": residents, "workers": 2, "batch_size": 500, "adapter": "no-op"}
    return [
        Result("dispatch.throughput", residents / last, "messages/s", raw, params).emit(),
        Result("dispatch.latency_first", first, "s", 1.0, {**params, "baseline": "target"}).emit(),
        Result("dispatch.latency_last", last, "s", residents / raw, {**params, "baseline": "raw updates"}).emit(),
    ]


async def _migrate(path: Path) -> None:
    store = await open_store(bench_settings(path))
    await store.db.close()
