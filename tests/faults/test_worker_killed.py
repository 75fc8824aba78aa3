"""A delivery process killed (SIGKILL) at each step of the delivery path, and the process that replaces it.

The dying process is ``tests.engine.crash_worker``: a real Engine with a recording gateway that logs every
message handed to it to a file, which kills itself at a chosen step of its third batch (``CRASH_WORKER_KILL_AT``).
Its leases would run for ten minutes; the replacement, a running engine started in the test as a
supervisor would restart the service, takes them back once the dead process has missed three heartbeats
and finishes the notice by itself. What can reach a resident twice is at most the batch in flight, and
only the part of it already handed to the gateway (``notifier.engine.dispatch``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.population import populate_url
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.databases import url_of
from tests.engine.conftest import approved
from tests.engine.crash_worker import KILL_AT, crash_settings
from tests.engine.test_crash import count_log
from tests.faults.conftest import counts, running, until

ROOT = Path(__file__).resolve().parents[2]
RESIDENTS, BATCH, BATCHES_BEFORE = 300, 50, 2
ENGINE = {"workers": 1, "batch_size": BATCH, "lease_seconds": 600, "heartbeat_seconds": 0.2, "poll_interval": 0.02}


async def run_until_it_kills_itself(db_url: str, log_path: Path, step: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.engine.crash_worker",
        db_url,
        str(log_path),
        json.dumps({"engine": ENGINE}),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), KILL_AT: f"{step}:{BATCHES_BEFORE}"},
    )
    try:
        async with asyncio.timeout(60):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == -signal.SIGKILL, "the process ended otherwise than by its kill"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "handed_over_twice"),
    [("claimed", 0), ("sending", BATCH // 2), ("sent", BATCH), ("recorded", 0)],
)
async def test_a_worker_killed_at_each_step_is_replaced_without_losing_anyone(
    step: str, handed_over_twice: int, fault_store: Store, tmp_path: Path
) -> None:
    """The issuer sees the notice stop at 100 SMS ``sent`` (150 once the third batch was recorded) and 50
    ``sending`` while no process runs;
    once the service is back, every one of the 300 residents' SMS ``sent`` without anybody touching the
    queue. Handed to the gateway twice: none when the process died before the send (``claimed``) or after
    recording it (``recorded``: the transaction that wrote its results also leased the next batch, which is
    sent once, by the replacement); the part already handed over when it died during the send (``sending``:
    half the batch); the whole batch in flight when it died between send and record (``sent``)."""
    db_url, log_path = url_of(fault_store.db), tmp_path / "sent.log"
    await populate_url(db_url, RESIDENTS)
    notice = await approved(fault_store, target={"areas": ["370725"]})

    await run_until_it_kills_itself(db_url, log_path, step)

    before = await counts(fault_store, notice)
    assert before["sms"]["sent"] == BATCHES_BEFORE * BATCH + (BATCH if step == "recorded" else 0)
    assert before["sms"]["sending"] == BATCH  # "recorded": the next batch, claimed with that record, not sent

    settings = crash_settings(db_url, **ENGINE)
    channel = RecordingChannel("sms", log_path=str(log_path), max_batch=100)
    async with running(fault_store, settings, {"sms": channel}, time.time):

        async def everyone_sent() -> bool:
            return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

        await until(everyone_sent, "every resident's SMS sent by the replacement process")

    log = await count_log(log_path)
    assert len(log) == RESIDENTS  # nobody lost
    assert sum(log.values()) - len(log) == handed_over_twice
    assert Counter(log.values()) <= Counter({1: RESIDENTS, 2: BATCH})  # nobody three times
