"""Personal texts from a roster: fan-out and composition of a roster notice beside a plain notice, same run.

A fresh SQLite file gets ``residents`` synthetic residents and a roster with one row per resident (its id,
a name and an amount, as civil affairs uploads them); then the engine fans out (``fan_out_next``) a plain
notice to the whole county and a notice targeting the roster whose body prints three of the row's cells.
Both reach every resident once. ``roster.fanout_rate`` is the roster notice's deliveries per second beside
the plain notice's (target: ratio >= 0.5). A roster notice stores one rendering with markers and each
message is completed when it is sent (``engine.personal``), so ``roster.compose_rate`` measures that cost
too: messages built for the dispatcher (``dispatch.build_messages``, 500 per batch as a worker claims them,
cells read from the roster per batch) per second, beside the same for the plain notice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Result, bench_settings, open_store
from bench.population import populate
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.dispatch import build_messages
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from notifier.testing import RecordingChannel
from subscribers.roster_rows import RosterTable

CHANNELS = ["wechat", "sms", "email"]
PLAIN: dict[str, Any] = {"topic": "air-quality", "title": "发放通知", "body": "本月救助金已发放，请查收。"}
PLAIN["target"] = {"areas": ["370725"]}
PERSONAL_BODY = "{{ row.姓名 }}您好：您的{{ row.项目 }}{{ row.金额 }}元已发放，请查收。"
BATCH = 500
COLUMNS = "id, notice_id, subscriber_id, channel, alias, address, priority"


async def fan_out_seconds(store: Store, ctx: EngineContext, payload: dict[str, Any]) -> tuple[int, float, int]:
    """(deliveries created, seconds, notice id) for one approved notice fanned out by the engine."""
    notice, _ = await store.create_notice(
        NoticeIn.model_validate({**payload, "channels": CHANNELS}), department="environment", created_by=None,
        actor="bench",
    )
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
    started = time.perf_counter()
    await fan_out_next(ctx)
    elapsed = time.perf_counter() - started
    counts = await store.delivery_counts(notice.id)
    return sum(n for states in counts.values() for n in states.values()), elapsed, notice.id


async def compose_seconds(ctx: EngineContext, path: Path, notice_id: int) -> tuple[int, float]:
    """(messages, seconds) to build every message of a notice as the dispatcher does, batch by batch."""
    reader = sqlite3.connect(path)
    reader.row_factory = sqlite3.Row
    rows = [dict(r) for r in reader.execute(f"SELECT {COLUMNS} FROM deliveries WHERE notice_id = ?", (notice_id,))]
    reader.close()
    started = time.perf_counter()
    built = 0
    for first in range(0, len(rows), BATCH):
        built += len(await build_messages(ctx, rows[first : first + BATCH], {}))
    return built, time.perf_counter() - started


async def measure(path: Path, residents: int) -> list[Result]:
    settings = bench_settings(path)
    store = await open_store(settings)
    try:
        table = RosterTable(
            ["resident_id", "姓名", "项目", "金额"],
            [(i, {"resident_id": str(i), "姓名": f"居民{i}", "项目": "低保金", "金额": f"{300 + i % 900}.50"})
             for i in range(1, residents + 1)],
        )
        roster_id = await store.create_roster(
            department="environment", name="bench", key="resident_id", table=table, direct=False, actor="bench"
        )
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in settings.channels})
        plain_n, plain_s, plain_id = await fan_out_seconds(store, ctx, PLAIN)
        personal = {**PLAIN, "body": PERSONAL_BODY, "target": {"roster": roster_id}}
        roster_n, roster_s, roster_id_notice = await fan_out_seconds(store, ctx, personal)
        plain_built, plain_cs = await compose_seconds(ctx, path, plain_id)
        roster_built, roster_cs = await compose_seconds(ctx, path, roster_id_notice)
    finally:
        await store.db.close()
    params = {"residents": residents, "roster_rows": residents, "deliveries": roster_n, "channels": "wechat,sms,email"}
    return [
        Result("roster.fanout_rate", roster_n / roster_s, "deliveries/s", plain_n / plain_s,
               {**params, "baseline": "plain notice, same audience"}).emit(),
        Result("roster.compose_rate", roster_built / roster_cs, "messages/s", plain_built / plain_cs,
               {**params, "batch": BATCH, "baseline": "plain notice"}).emit(),
    ]


def run(quick: bool) -> list[Result]:
    residents = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        asyncio.run(migrate_only(path))
        populate(str(path), residents)
        return asyncio.run(measure(path, residents))


async def migrate_only(path: Path) -> None:
    store = await open_store(bench_settings(path))
    await store.db.close()
