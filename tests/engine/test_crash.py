"""Crashes in the middle of a notice: nobody is lost, and only the batch in flight is sent twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.population import populate
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved
from tests.engine.crash_worker import ENGINE, crash_settings

ROOT = Path(__file__).resolve().parents[2]


async def restart_and_drain(store: Store, settings: Settings, log_path: Path) -> RecordingChannel:
    """A new engine after the crash, its clock past every lease the dead worker held."""
    channel = RecordingChannel("sms", log_path=str(log_path), max_batch=100)
    clock = FakeClock()
    clock.advance(settings.engine.lease_seconds + 1)
    await Engine(store, settings, {"sms": channel}, clock=clock).run_until_idle()
    return channel


def read_log(path: Path) -> Counter[int]:
    """Deliveries handed to the adapter; a line torn by the SIGKILL (at most one) is not a hand-over."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    counts: Counter[int] = Counter()
    torn = 0
    for line in text.splitlines():
        try:
            counts[json.loads(line)["delivery"]] += 1
        except json.JSONDecodeError:
            torn += 1
    assert torn <= 1, f"{torn} unreadable lines in the adapter's log"
    return counts


async def count_log(path: Path) -> Counter[int]:
    return await asyncio.to_thread(read_log, path)


async def assert_everyone_served_once_beyond_the_batch(store: Store, notice_id: int, log: Counter[int], n: int) -> int:
    notice = await store.get_notice(notice_id)
    assert notice.counts == {"sms": {"sent": n}}
    assert len(log) == n  # every resident handed to the adapter
    duplicates = sum(log.values()) - len(log)
    assert duplicates <= ENGINE["batch_size"] * ENGINE["workers"]  # only what was in flight at the crash
    return duplicates


async def test_cancelled_worker_task_loses_nobody(engine_store: Store, tmp_path: Path) -> None:
    settings = crash_settings(f"sqlite:///{tmp_path}/engine.db")
    await asyncio.to_thread(populate, str(tmp_path / "engine.db"), 1000)
    notice = await approved(engine_store, target={"topics": ["air-quality"]})
    channel = RecordingChannel("sms", log_path=str(tmp_path / "sent.log"), max_batch=100)
    engine = Engine(engine_store, settings, {"sms": channel})
    await engine.start()
    while len(channel.messages) < 300:  # noqa: ASYNC110 - polling what another task produces
        await asyncio.sleep(0.01)
    channel.hold()  # the next batch stops inside the adapter call...
    channel.entered.clear()
    await channel.entered.wait()
    for worker in engine._workers:  # ...where the worker task is cancelled, as by a crash
        worker.cancel()
    await engine.stop()

    await restart_and_drain(engine_store, settings, tmp_path / "sent.log")

    log = await count_log(tmp_path / "sent.log")
    duplicates = await assert_everyone_served_once_beyond_the_batch(engine_store, notice.id, log, 1000)
    print(f"\ncancelled worker task: {duplicates} messages handed to the adapter twice")


@pytest.mark.slow
async def test_sigkilled_process_resumes_with_every_resident_served(engine_store: Store, tmp_path: Path) -> None:
    db_path, log_path = tmp_path / "engine.db", tmp_path / "sent.log"
    await asyncio.to_thread(populate, str(db_path), 10_000)
    notice = await approved(engine_store, target={"areas": ["370725"]})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.engine.crash_worker",
        f"sqlite:///{db_path}",
        str(log_path),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        while len(await count_log(log_path)) < 4000:
            assert process.returncode is None, "the delivery process died by itself"
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    sent_before_kill = sum((await count_log(log_path)).values())
    assert sent_before_kill < 10_000, "the kill came too late to test anything"

    await restart_and_drain(engine_store, crash_settings(f"sqlite:///{db_path}"), log_path)

    log = await count_log(log_path)
    duplicates = await assert_everyone_served_once_beyond_the_batch(engine_store, notice.id, log, 10_000)
    print(f"\nSIGKILL after {sent_before_kill} of 10000: {duplicates} messages handed to the adapter twice")
