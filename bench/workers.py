"""Throughput with 1, 2 and 4 ``notifier worker`` processes sharing one PostgreSQL database.

Each round makes a fresh database on the PostgreSQL server of ``NOTIFIER_BENCH_PG_DSN`` (else
``NOTIFIER_TEST_PG_DSN``, else ``postgresql://postgres@127.0.0.1:5432/test``), migrates it, writes the synthetic
residents with COPY, and fans a notice to all of them out beforehand (in this process), so the rounds measure
claiming, sending and recording alone. Then it starts N real ``python -m notifier worker`` processes (two delivery
tasks each, batches of 50) sending SMS to the local sink: the outbox adapter, one file per message (an HTTP sink on
this small machine is itself the bottleneck: its one process answers no faster for more clients), its folder in
memory (tmpfs at ``/dev/shm``) where the machine has one (``sink_folder``). On a disk a file cost the workers kernel
time that grew with the files deleted there in the minutes before, not with anything the engine does: ext4 without a
journal, as here, passes over every inode freed in the last one to six minutes before it hands out a new one
(``recently_deleted`` in the kernel's inode allocator), and each round deleted its 30,000 files, so the later rounds
paid for the earlier ones (and for the rest of the machine's work on that disk): on a fresh ext4 without a journal
30,000 files cost 83 microseconds of kernel time each, the next 30,000 after deleting them 600. That is why the
2-process round's messages cost its workers three times the 1-process round's on 2026-11-30, which read as the
processes getting in each other's way: per message two processes run about the queries of one, their claims as full.
Measured: messages per second recorded as sent in the database, from the moment every process has registered to the
last message (the processes' start-up is left out). Three rounds of each process count, interleaved (1, 2, 4, 1,
2, 4, ...), each count's median reported with its samples (one round each with ``--quick``). Baseline: the
one-process median of the same run; the target is 2 processes >= 1.7 x one. Each round's database is dropped
afterwards. Each record also carries the processor time a message costs the workers and the PostgreSQL backends
serving them over the measured span (the kernel's part of the workers' too: ``worker_system_us_per_message``), and
from the one-process figures the most N processes can give over the one-process rate on this machine's cores
(``ceiling_here``, see ``ceiling``): a machine whose cores the database shares cannot show more than that, whatever
the engine does.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import Process
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import Result, median, rounds, sampling, skipped
from bench.population import _resident  # the same synthetic residents as the SQLite benchmarks
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.fanout import fan_out_next
from notifier.store import Store, open_database
from notifier.testing import RecordingChannel

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PROCESSES = (1, 2, 4)
ENGINE = {"workers": 2, "batch_size": 50, "poll_interval": 0.05, "heartbeat_seconds": 1.0}
SIGNING_SECRET = "bench-workers-signing-secret-0123456789abcdef"
TOWNS = 10
MEMORY = Path("/dev/shm")


def sink_folder() -> Path | None:
    """Where the outbox writes: the memory filesystem at ``/dev/shm`` when it is one and writable, else None
    (the temporary folder, likely on disk): see the module's docstring."""
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(MEMORY) and fields[2] == "tmpfs" and os.access(MEMORY, os.W_OK):
            return MEMORY
    return None


def base_dsn() -> str:
    return os.environ.get("NOTIFIER_BENCH_PG_DSN") or os.environ.get("NOTIFIER_TEST_PG_DSN") or DEFAULT_DSN


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def create_database(dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def populate_postgres(url: str, count: int) -> None:
    """The residents of ``bench.population`` (ids 1..count, all following air-quality), written with COPY."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        stamp = datetime.now(UTC).isoformat()
        areas: list[tuple[str, str, str, str | None]] = [("370725", "县", "county", None)]
        for t in range(TOWNS):
            town = f"370725{t + 1:03d}"
            areas.append((town, f"镇{t + 1}", "town", "370725"))
            areas += [(f"{town}{v + 1:03d}", f"村{t + 1}-{v + 1}", "village", town) for v in range(2)]
        await conn.executemany(
            "INSERT INTO areas (code, name, level, parent) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", areas
        )
        await conn.execute("INSERT INTO topics (code, name) VALUES ('air-quality', '空气质量') ON CONFLICT DO NOTHING")
        await conn.execute(
            "INSERT INTO departments (code, name) VALUES ('environment', '生态环境分局') ON CONFLICT DO NOTHING"
        )
        topic = await conn.fetchval("SELECT id FROM topics WHERE code = 'air-quality'")
        columns = ["id", "name", "phone", "email", "wechat_openid", "area_code", "channels", "consent_source",
                   "consent_at", "created_at", "updated_at"]
        await conn.copy_to_table("subscribers", source=csv_bytes(_resident(i, TOWNS, stamp) for i in
                                                                  range(1, count + 1)), columns=columns, format="csv")
        await conn.copy_to_table("subscriber_topics", source=csv_bytes((i, topic) for i in range(1, count + 1)),
                                 columns=["subscriber_id", "topic_id"], format="csv")
        await conn.execute("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $1)", count)
    finally:
        await conn.close()


def csv_bytes(rows: Any) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return io.BytesIO(text.getvalue().encode("utf-8"))


def settings_for(url: str, outbox: Path) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": url},
            "security": {"signing_secret": SIGNING_SECRET},
            "engine": ENGINE,
            "channels": {"sms": {"kind": "sms", "type": "outbox", "root": str(outbox)}},
        }
    )


def write_config(path: Path, settings: Settings, outbox: Path) -> None:
    lines = ["[database]", f'url = "{settings.database.url}"', "[security]", f'signing_secret = "{SIGNING_SECRET}"',
             "[engine]", *(f"{k} = {v!r}" for k, v in ENGINE.items()), "[channels.sms]", 'kind = "sms"',
             'type = "outbox"', f'root = "{outbox}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def prepare(url: str, residents: int, settings: Settings) -> tuple[Store, int]:
    """Migrated, populated, and the notice fanned out: every delivery queued before a worker starts."""
    db = await open_database(url)
    await db.migrate()
    await populate_postgres(url, residents)
    store = Store(db)
    notice_in = NoticeIn.model_validate({"topic": "air-quality", "title": "bench", "body": "bench",
                                         "target": {"areas": ["370725"]}, "channels": ["sms"]})
    notice, _ = await store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
    ctx = EngineContext(store, settings, {"sms": RecordingChannel("sms")})
    while await fan_out_next(ctx) is not None:
        pass
    return store, notice.id


async def start_workers(config: Path, count: int) -> list[Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    return [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "notifier", "worker", "--config", str(config), cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


async def stop_workers(processes: list[Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def sent(store: Store, notice_id: int) -> int:
    return (await store.delivery_counts(notice_id)).get("sms", {}).get("sent", 0)


def cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    """User and system processor time of a running process so far (Linux /proc), or its system (kernel) time
    alone; 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return ((0 if system_only else int(fields[11])) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the workers' pools, the poller)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


async def one_round(dsn: str, processes: int, residents: int) -> tuple[float, float, float, float, float]:
    """Messages per second recorded as sent while ``processes`` worker processes run; the cores the workers
    used in all (their processor seconds, start-up included, per second of the measured span); and over
    the measured span alone, the processor microseconds per message of the workers and of the PostgreSQL
    backends serving them (not the server's shared writer processes), and the kernel's part of the workers'."""
    name = f"bench_workers_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await create_database(dsn, name)
    url = with_database(dsn, name)
    workers: list[Process] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-", dir=sink_folder()) as tmp:
            settings = settings_for(url, Path(tmp) / "outbox")
            store, notice_id = await prepare(url, residents, settings)
            config = Path(tmp) / "config.toml"
            write_config(config, settings, Path(tmp) / "outbox")
            workers = await start_workers(config, processes)
            while len(await store.registered_workers()) < processes:
                if any(w.returncode is not None for w in workers):
                    raise RuntimeError("a worker process died")
                await asyncio.sleep(0.05)
            started, done_before = time.perf_counter(), await sent(store, notice_id)
            workers_before = sum(cpu_seconds(w.pid) for w in workers)
            system_before = sum(cpu_seconds(w.pid, system_only=True) for w in workers)
            backends = await server_pids(url)  # each worker's pool is open by now: they stay for the round
            server_before = {pid: cpu_seconds(pid) for pid in backends}
            while (count := await sent(store, notice_id)) < residents:
                if any(w.returncode is not None for w in workers):
                    raise RuntimeError("a worker process died")
                await asyncio.sleep(0.2)
            wall = time.perf_counter() - started
            rate = (count - done_before) / wall
            cpu = sum(cpu_seconds(w.pid) for w in workers)
            messages = max(1, count - done_before)
            worker_us = (cpu - workers_before) / messages * 1e6
            system = sum(cpu_seconds(w.pid, system_only=True) for w in workers)
            system_us = (system - system_before) / messages * 1e6
            server_after = {pid: cpu_seconds(pid) for pid in backends}
            server_cpu = sum(server_after[pid] - server_before[pid] for pid in backends if server_after[pid])
            server_us = server_cpu / messages * 1e6
            await stop_workers(workers)
            await store.db.close()
        # the workers' processor time over the measured span and before it (start-up included): what they were
        # given, beside the wall time; a machine short of cores gives N processes no more than it gave one
        return rate, cpu / wall, worker_us, server_us, system_us
    finally:
        await stop_workers(workers)
        await drop_database(dsn, name)


Round = tuple[float, float, float, float, float]  # one_round's figures


async def measure(dsn: str, residents: int, sets: int) -> dict[int, list[Round]]:
    """``sets`` rounds of each process count, interleaved (1, 2, 4, 1, 2, 4, ...): a slow spell of the machine
    falls on every count alike, not on the one-process baseline alone (one round each, as until 2026-12-02, gave
    2 processes 1.078, 1.302 and 1.577 x in three runs back to back)."""
    found: dict[int, list[Round]] = {n: [] for n in PROCESSES}
    for _ in range(sets):
        for n in PROCESSES:
            found[n].append(await one_round(dsn, n, residents))
    return found


def run(quick: bool) -> list[Result]:
    residents = 10_000 if quick else 30_000
    dsn = base_dsn()
    try:
        found = asyncio.run(measure(dsn, residents, rounds(quick)))
    except (OSError, ImportError) as exc:
        return [skipped("workers.throughput", "messages/s", f"no PostgreSQL here: {type(exc).__name__}").emit()]
    where = "in memory (tmpfs)" if sink_folder() is not None else "on disk"
    params = {"residents": residents, "database": "PostgreSQL", "sink": f"outbox (a file per message), {where}",
              **{k: v for k, v in ENGINE.items() if k in ("workers", "batch_size")}}  # fmt: skip
    cores = os.cpu_count() or 1
    figures = {n: [median([round_[i] for round_ in found[n]]) for i in range(5)] for n in PROCESSES}
    one_rate, worker_us, server_us = figures[1][0], figures[1][2], figures[1][3]
    results = []
    for n in PROCESSES:
        rate, worker_cores, n_worker_us, n_server_us, system_us = figures[n]
        samples = sampling({"rate": [round_[0] for round_ in found[n]],
                            "one_process_rate": [round_[0] for round_ in found[1]]})  # fmt: skip
        figures_n = {
            "processes": n, "baseline": "1 process, same run", "worker_cores": round(worker_cores, 2),
            "worker_us_per_message": round(n_worker_us, 1), "worker_system_us_per_message": round(system_us, 1),
            "server_us_per_message": round(n_server_us, 1),
            "ceiling_here": round(ceiling(n, cores, worker_us, server_us, one_rate), 2),
            "cores": cores, "load_average": round(os.getloadavg()[0], 1),
        }  # fmt: skip
        results.append(
            Result(f"workers.throughput_{n}", rate, "messages/s", one_rate, {**params, **figures_n, **samples}).emit()
        )
    return results


def ceiling(processes: int, cores: int, worker_us: float, server_us: float, one_rate: float) -> float:
    """The most ``processes`` workers can give over the one-process round's rate (``one_rate``, messages/s) on
    ``cores`` cores shared with the database server, from the processor time one message cost a worker and the
    server in that round: each process is held to a core (1 / worker_us), and all of them together to the
    machine's cores shared by the workers' and the server's part of every message, whichever is less. The
    one-process rate is the measured one: a process that waits on the database runs below its core, and a
    second process fills those waits (until 2026-12-02 the model took one process to run at its core's full
    rate, and gave a ceiling, 1.19, below the 1.342 x then measured)."""
    if worker_us <= 0 or one_rate <= 0:
        return float("nan")
    many = min(processes / worker_us, cores / (worker_us + server_us)) * 1e6
    return many / one_rate
