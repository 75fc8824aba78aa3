"""Recovery after a crash: seconds from a SIGKILL to the restarted process sending the dead one's batch again.

A delivery process (``python -m bench.recovery worker DB LOG``, one worker, the default ``lease_seconds``
60 and ``heartbeat_seconds`` 2) hands three batches of 100 to a recording adapter and records them; the
fourth is handed over and never answered, and the process is killed there. A new engine is started at
once on the real clock, and the time until it hands any message of that batch to its adapter again is
measured. Baseline: the lease, which was the wait before worker heartbeats. Median of three rounds
(one with ``--quick``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, bench_settings, open_store
from bench.population import populate
from channels.base import OutboundMessage, SendResult
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel

ROOT = Path(__file__).resolve().parents[1]
ENGINE = {"workers": 1, "batch_size": 100}
ANSWERED = 3  # batches recorded before the one in flight at the kill


def handed(log: Path) -> list[int]:
    """Delivery ids the adapter was handed, in order (a line torn by the kill is skipped)."""
    ids = []
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        try:
            ids.append(json.loads(line)["delivery"])
        except json.JSONDecodeError:
            pass
    return ids


class WatchingChannel(RecordingChannel):
    """A recording adapter that says when it is handed any of the ``watched`` deliveries."""

    def __init__(self, watched: set[int]) -> None:
        super().__init__("sms", max_batch=100)
        self.watched, self.seen = watched, asyncio.Event()

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        if self.watched & {message.delivery_id for message in batch}:
            self.seen.set()
        return await super().send(batch)


async def approve(store: Store) -> None:
    await store.upsert_department("environment", "县生态环境分局", ["air-quality"])
    notice, _ = await store.create_notice(
        NoticeIn.model_validate({"topic": "air-quality", "title": "预警", "body": "减少外出。",
                                 "target": {"areas": ["370725"]}, "channels": ["sms"]}),
        department="environment", created_by=None, actor="bench",
    )  # fmt: skip
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")


async def one_round(folder: Path, residents: int) -> float:
    db_path, log = folder / "bench.db", folder / "handed.log"
    settings = bench_settings(db_path, **ENGINE)
    store = await open_store(settings)
    try:
        await asyncio.to_thread(populate, str(db_path), residents)
        await approve(store)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.recovery", "worker", str(db_path), str(log),
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        while len(in_flight := (await asyncio.to_thread(handed, log))[ANSWERED * 100 :]) < 100:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the other process's progress is in its log file
        process.send_signal(signal.SIGKILL)
        await process.wait()
        killed = time.monotonic()
        channel = WatchingChannel(set(in_flight))
        engine = Engine(store, settings, {"sms": channel})
        await engine.start()
        try:
            await channel.seen.wait()
            return time.monotonic() - killed
        finally:
            await engine.stop()
    finally:
        await store.db.close()


def run(quick: bool) -> list[Result]:
    residents, rounds = (1_000, 1) if quick else (10_000, 3)
    samples = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            samples.append(asyncio.run(one_round(Path(folder), residents)))
    lease = bench_settings(Path("unused.db")).engine
    params = {"residents": residents, "heartbeat_seconds": lease.heartbeat_seconds, "baseline": "lease_seconds",
              "samples": [round(s, 2) for s in samples]}
    return [Result("recovery.resume_after_sigkill", statistics.median(samples), "s", lease.lease_seconds,
                   params).emit()]


async def worker(db_path: str, log: str) -> None:
    """The delivery process that is killed: answers ``ANSWERED`` batches, then hands one over and hangs."""
    settings = bench_settings(Path(db_path), **ENGINE)
    store = await open_store(settings)
    channel = RecordingChannel("sms", log_path=log, max_batch=100, stall_after=ANSWERED)
    await Engine(store, settings, {"sms": channel}).start()
    await asyncio.Event().wait()


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    asyncio.run(worker(sys.argv[2], sys.argv[3]))
