"""What every benchmark shares: a fresh migrated database, a result record, peak memory.

The channel benchmarks (sms, email, wechat) measure each side of a comparison (the engine, the raw
client, Apprise) ``rounds()`` times in one run, interleaved (engine, raw, Apprise, engine, raw, ...) so
that any drift of this machine's load falls on every side alike, and report each side's median; the
samples are in the params (``sampling``). ``--quick`` takes one sample per side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sinks import Sink
from notifier.config import Settings
from notifier.store import Store, open_database


@dataclass
class Result:
    name: str
    value: float | None  # None: the benchmark was skipped (params["skipped"] says why)
    unit: str
    baseline: float | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return round(self.value / self.baseline, 3) if self.baseline else 0.0

    def as_json(self) -> str:
        data = {
            "name": self.name,
            "value": None if self.value is None else round(self.value, 3),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 3),
            "ratio": self.ratio,
            "params": self.params,
        }
        return json.dumps(data, ensure_ascii=False)

    def emit(self) -> Result:
        print(self.as_json(), flush=True)
        return self


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench_settings(path: Path, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{path}"},
            "engine": {"poll_interval": 0.02, **engine},
            "channels": {
                "sms": {"kind": "sms", "type": "outbox"},
                "email": {"kind": "email", "type": "outbox"},
                "wechat": {"kind": "wechat", "type": "outbox"},
            },
        }
    )


async def open_store(settings: Settings) -> Store:
    db = await open_database(settings.database.url, pool_size=settings.database.pool_size)
    await db.migrate()
    return Store(db)


def channel_settings(path: Path, alias: str, channel: dict[str, Any], **engine: Any) -> Settings:
    """Settings with one real channel alias (``channel``: its ``[channels.<alias>]`` table), the engine's as the
    service's defaults but for ``engine``. The poll interval is the service's too (0.5 s): until 2026-12-02 these
    benchmarks polled every 20 ms, which hid that a notice was marked done only at the planner's next poll after
    its last batch, and cost the engine some 250 planner passes and as many empty claims in a ten-second run."""
    return Settings.model_validate(
        {
            "server": {"public_url": "https://tongzhi.example.gov.cn"},
            "database": {"url": f"sqlite:///{path}"},
            "engine": engine,
            "security": {"signing_secret": "bench-signing-secret-0123456789"},
            "channels": {alias: channel},
        }
    )


async def engine_send_rate(settings: Settings, kind: str, expected: int, give_up_after: float = 600) -> float:
    """Seconds from approving one notice on ``kind`` until ``expected`` deliveries are recorded ``sent``.

    The database must already hold the residents (``bench.population.populate``). The whole engine runs
    as the service runs it (``start()``: planner and workers, channels built by ``load_channels``); the
    clock starts at the approval, as the API does it (transition, then ``wake()``), and stops when the
    engine has marked the notice done (fanned out, no delivery queued or sending): its ``finish_notices``
    says so, in this process, so nothing polls beside the engine being measured. Until 2026-12-02 the
    notice's state was read every 20 ms, some 500 reads in a ten-second run, each a read transaction after
    the engine's last commit (on SQLite the reader then reloads its page cache). Then the deliveries must
    number ``expected``, all ``sent``.
    """
    from channels import load_channels
    from notifier.domain.enums import NoticeState
    from notifier.domain.models import NoticeIn
    from notifier.engine import Engine

    store = await open_store(settings)
    notice_in = NoticeIn.model_validate(
        {"topic": "air-quality", "title": "重污染天气橙色预警", "body": BODY, "target": {"areas": ["370725"]},
         "channels": [kind]}
    )  # fmt: skip
    notice, _ = await store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
    done = asyncio.Event()
    finish_notices = store.finish_notices

    async def finish_and_tell() -> list[int]:
        finished = await finish_notices()
        if notice.id in finished:
            done.set()
        return finished

    store.finish_notices = finish_and_tell  # type: ignore[method-assign]
    engine = Engine(store, settings, load_channels(settings))
    await engine.start()
    try:
        await asyncio.sleep(0.2)  # idle, as a running service would be
        approved_at = time.perf_counter()
        await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
        engine.wake()
        async with asyncio.timeout(give_up_after):
            await done.wait()
        seconds = time.perf_counter() - approved_at
        counts = await store.delivery_counts(notice.id)
    finally:
        await engine.stop()
        await store.db.close()
    if counts != {kind: {"sent": expected}}:
        raise RuntimeError(f"expected {expected} {kind} deliveries, all sent; the engine made {counts}")
    return seconds


async def recorded_tries(url: str) -> int:
    """The tries the engine recorded over every delivery of the database at ``url`` (``attempts``: one for each
    claim that handed the delivery to the adapter)."""
    sql = "SELECT COALESCE(SUM(attempts), 0) FROM deliveries"
    if url.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(url, timeout=10)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    def read() -> int:
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute(sql).fetchone()[0])

    return await asyncio.to_thread(read)


async def migrate(path: Path) -> None:
    store = await open_store(bench_settings(path))
    await store.db.close()


def skipped(name: str, unit: str, reason: str) -> Result:
    """The record of a benchmark that could not run here (a missing dependency): value null."""
    return Result(name, None, unit, None, {"skipped": reason})


BODY = (
    "受不利气象条件影响，预计12月1日至12月4日我县将出现持续重污染天气过程，经县重污染天气应急指挥部研究，"
    "决定于12月1日12时启动重污染天气橙色预警（Ⅱ级）应急响应。请减少户外活动，外出时请佩戴口罩。"
)


def rounds(quick: bool) -> int:
    """How many times each side of a channel comparison is measured: 3 (the median is reported), 1 if quick."""
    return 1 if quick else 3


def median(samples: list[float]) -> float:
    """The median of the samples (the middle one of three; the mean of the middle two of an even count)."""
    ordered = sorted(samples)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def sampling(samples: dict[str, list[float]]) -> dict[str, Any]:
    """The params that show how a value was taken: each side's samples, in the order they were measured."""
    count = len(next(iter(samples.values())))
    how = "median of 3 interleaved rounds" if count == 3 else f"{count} round(s), quick: one sample per side"
    return {"statistic": how, **{f"{side}_samples": [round(v, 1) for v in values] for side, values in samples.items()}}


def machine_share(cpu_before: float, real_seconds: float) -> dict[str, float]:
    """How much of the machine this process had: its CPU seconds since ``cpu_before`` (``cpu_seconds()``)
    per real second, and the 1-minute load average, for figures taken while other work shares the cores."""
    return {
        "process_cpu_per_real_s": round((cpu_seconds() - cpu_before) / real_seconds, 2) if real_seconds else 0.0,
        "load_average": round(os.getloadavg()[0], 1),
        "cores": os.cpu_count() or 1,
    }


@dataclass(frozen=True)
class CpuTimes:
    """Processor seconds so far of: the calling thread (the event loop's, called from a coroutine), this whole
    process (with SQLite's connection threads), and the local PostgreSQL server's processes, live and ended
    (None where no server process can be read)."""

    thread: float
    process: float
    server: float | None

    @classmethod
    def now(cls, server: bool = False) -> CpuTimes:
        """The readings now; the server's only when ``server`` (reading it walks every process)."""
        return cls(time.thread_time(), time.process_time(), postgres_cpu_seconds() if server else None)

    def per_message(self, before: CpuTimes, messages: int) -> dict[str, float]:
        """Microseconds a message since ``before``: ``loop`` (this thread), ``other_threads`` (the rest of the
        process) and ``server`` (PostgreSQL's processes, when both readings have them)."""
        scale = 1e6 / messages
        loop = self.thread - before.thread
        other = self.process - before.process - loop
        cost = {"loop": round(loop * scale, 1), "other_threads": round(other * scale, 1)}
        if self.server is not None and before.server is not None:
            cost["server"] = round((self.server - before.server) * scale, 1)
        return cost


@contextlib.contextmanager
def client_and_sink_apart(sink_pid: int) -> Iterator[dict[str, Any]]:
    """This process (each side's client: the engine with its threads, the raw client, Apprise's) on one core
    and the sink process on another, for the ``with`` block; the params that say so.

    Left to the scheduler, the engine's event loop, its SQLite thread and the sink shared two cores by turns: the
    two threads' hand-overs of the interpreter lock then crossed cores, and a message cost the engine's process
    about a third more processor time (``bench sms``, 2026-12-01) while the single-threaded raw client lost
    little. With a core each, the client side is measured on a core of its own, as a worker beside a gateway on
    another host would run; the PostgreSQL server, where there is one, is left to the scheduler."""
    mine = os.sched_getaffinity(0)
    cores = sorted(mine)
    if len(cores) < 2:
        yield {"cores": "one core, shared by the client and the sink"}
        return
    os.sched_setaffinity(sink_pid, {cores[-1]})
    os.sched_setaffinity(0, {cores[0]})  # this thread; threads started from it (SQLite's) inherit it
    try:
        yield {"cores": f"client process on core {cores[0]}, sink on core {cores[-1]}"}
    finally:
        os.sched_setaffinity(0, mine)


def postgres_cpu_seconds() -> float | None:
    """User and system CPU seconds of every ``postgres`` process on this machine, with those of its children
    that have ended (a backend's, once its connection closed, counts in its parent's): the server's whole
    share of the processors, whichever database did the work."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                line = stat.read()
        except OSError:
            continue
        name = line[line.find("(") + 1 : line.rfind(")")]
        if name != "postgres" and not name.startswith("postgres:"):
            continue
        fields = line[line.rfind(")") + 2 :].split()
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        found = True
    return total / ticks if found else None


def cpu_seconds() -> float:
    """User and system CPU seconds of this process (and its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def checked_send_rate(sink: Sink, settings: Settings, kind: str, count: int) -> tuple[float, dict[str, float]]:
    """Messages per second of the engine with ``settings`` (its database already populated) sending a notice on
    ``kind`` (``engine_send_rate``), checked at the sink (``check_sends``), and the processor time a message cost
    (``CpuTimes.per_message``: the event loop's thread, SQLite's threads, the PostgreSQL server), from the engine's
    start to its stop. The SMS, e-mail and WeChat benchmarks all measure their engine side through it."""
    on_postgres = settings.database.url.startswith("postgres")
    sink.mark()
    before, cpu = sink.received(), CpuTimes.now(server=on_postgres)
    seconds = await engine_send_rate(settings, kind, count)
    cost = CpuTimes.now(server=on_postgres).per_message(cpu, count)
    check_sends(sink.received() - before, sink.recipients(), count, await recorded_tries(settings.database.url))
    return count / seconds, cost


def check_sends(got: int, reached: int, count: int, tries: int) -> None:
    """Raise unless the sink's ``got`` messages to ``reached`` distinct recipients are the ``count`` deliveries the
    engine recorded sent, each at least once, and no more sends than the ``tries`` it recorded. A try whose answer
    did not come in time is tried again (at least once, by design: the gateway may have sent it), so a resident
    can get a message twice, each send being a recorded try; a message never sent, or sent more often than
    tried, is a defect."""
    if reached != count:
        raise RuntimeError(f"the sink got messages for {reached} of {count} residents ({got} messages)")
    if got > tries:
        raise RuntimeError(f"the sink got {got} messages, more than the {tries} tries the engine recorded")
