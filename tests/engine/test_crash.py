"""Crashes in the middle of a notice: nobody is lost, and only the batch in flight is sent twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from asyncio.subprocess import Process
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.population import populate_url
from notifier.config import Settings
from notifier.engine import Engine, ReceiptOutcome, record_receipt
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import url_of
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


def read_log(path: Path) -> list[int]:
    """Deliveries handed to the adapter, in order; a line torn by the SIGKILL (at most one) is not a hand-over."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    handed: list[int] = []
    torn = 0
    for line in text.splitlines():
        try:
            handed.append(json.loads(line)["delivery"])
        except json.JSONDecodeError:
            torn += 1
    assert torn <= 1, f"{torn} unreadable lines in the adapter's log"
    return handed


async def count_log(path: Path) -> Counter[int]:
    return Counter(await asyncio.to_thread(read_log, path))


async def start_worker(db_url: str, log_path: Path, options: dict[str, Any] | None = None) -> Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.engine.crash_worker",
        db_url,
        str(log_path),
        json.dumps(options or {}),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def assert_everyone_served_once_beyond_the_batch(store: Store, notice_id: int, log: Counter[int], n: int) -> int:
    notice = await store.get_notice(notice_id)
    assert notice.counts == {"sms": {"sent": n}}
    assert len(log) == n  # every resident handed to the adapter
    duplicates = sum(log.values()) - len(log)
    assert duplicates <= ENGINE["batch_size"] * ENGINE["workers"]  # only what was in flight at the crash
    return duplicates


async def test_cancelled_worker_task_loses_nobody(engine_store: Store, tmp_path: Path) -> None:
    settings = crash_settings(url_of(engine_store.db))
    await populate_url(url_of(engine_store.db), 1000)
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
    db_url, log_path = url_of(engine_store.db), tmp_path / "sent.log"
    await populate_url(db_url, 10_000)
    notice = await approved(engine_store, target={"areas": ["370725"]})
    process = await start_worker(db_url, log_path)
    try:
        while len(await count_log(log_path)) < 4000:
            assert process.returncode is None, "the delivery process died by itself"
            await asyncio.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    sent_before_kill = sum((await count_log(log_path)).values())
    assert sent_before_kill < 10_000, "the kill came too late to test anything"

    await restart_and_drain(engine_store, crash_settings(db_url), log_path)

    log = await count_log(log_path)
    duplicates = await assert_everyone_served_once_beyond_the_batch(engine_store, notice.id, log, 10_000)
    print(f"\nSIGKILL after {sent_before_kill} of 10000: {duplicates} messages handed to the adapter twice")


@pytest.mark.slow
async def test_sigkilled_worker_is_replaced_on_its_heartbeat_and_receipted_sends_are_not_repeated(
    engine_store: Store, tmp_path: Path
) -> None:
    """The process dies between handing a batch to the gateway and recording it, with receipts for part of
    that batch already stored. Its leases run for 600 s; the restarted process takes them back 2 s after the
    dead one's last beat, and sends again only the messages no receipt speaks for."""
    db_url, log_path = url_of(engine_store.db), tmp_path / "sent.log"
    await populate_url(db_url, 1000)
    notice = await approved(engine_store, target={"areas": ["370725"]})
    engine = {"workers": 1, "lease_seconds": 600, "heartbeat_seconds": 0.2}
    process = await start_worker(
        db_url, log_path, {"engine": engine, "channel": {"own_ids": True, "stall_after": 3}}
    )
    try:
        while len(handed := await asyncio.to_thread(read_log, log_path)) < 400:  # 3 batches, and the stalled one
            assert process.returncode is None, "the delivery process died by itself"
            await asyncio.sleep(0.02)
        in_flight = handed[300:400]
        for position, delivery_id in enumerate(in_flight[:60]):
            status = "delivered" if position < 50 else "failed"
            outcome = await record_receipt(engine_store, "sms", f"sms-d{delivery_id}", status)
            assert outcome is ReceiptOutcome.UNKNOWN  # the send is not recorded yet: kept as an early receipt
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()

    settings = crash_settings(db_url, **engine)
    clock = FakeClock()
    clock.advance(2)  # ten missed beats; 598 s left on the dead process's leases
    channel = RecordingChannel("sms", log_path=str(log_path), max_batch=100, own_ids=True)
    await Engine(engine_store, settings, {"sms": channel}, clock=clock).run_until_idle()

    log = await count_log(log_path)
    assert len(log) == 1000  # everyone handed to the gateway
    assert [log[delivery_id] for delivery_id in in_flight[:60]] == [1] * 60  # a receipt speaks for these
    assert sum(log.values()) - len(log) == 40  # only the rest of the batch in flight is sent twice
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"sent": 940, "delivered": 50, "failed": 10}}
