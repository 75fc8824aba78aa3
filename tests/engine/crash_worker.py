"""A delivery process for the crash tests: ``python -m tests.engine.crash_worker DB_URL LOG_PATH [OPTIONS]``.

Runs a real Engine (two workers unless told otherwise) with a RecordingChannel that appends every message
it is handed to LOG_PATH, until the test kills it. OPTIONS is a JSON object: ``engine`` settings that
replace those of ``ENGINE``, and ``channel`` options of the RecordingChannel; or ``kannel`` options, to
send through a real Kannel instead (``StallingKannel``), with ``stall_after`` batches answered.

With ``CRASH_WORKER_KILL_AT=<step>:<n>`` in its environment the process kills itself (SIGKILL) at that step
of the delivery path of batch number n + 1, after n batches went through whole:

    claimed    the batch is leased in the database, nothing handed to the gateway yet
    sending    half of the batch handed to the gateway
    sent       all of it handed to the gateway, the answers not recorded
    recorded   the answers recorded in the database (with the next batch's claim, in one transaction)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from channels.base import OutboundMessage, SendResult
from channels.kannel import KannelChannel, KannelOptions
from notifier.config import Settings
from notifier.engine import Engine, dispatch
from notifier.store import Store, open_database
from notifier.store.database import Database, Row
from notifier.testing import RecordingChannel, RecordingOptions

KILL_AT = "CRASH_WORKER_KILL_AT"
STEPS = ("claimed", "sending", "sent", "recorded")

ENGINE = {"workers": 2, "batch_size": 100, "lease_seconds": 5, "poll_interval": 0.05}


def crash_settings(db_url: str, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "engine": {**ENGINE, **engine},
            "channels": {"sms": {"kind": "sms", "type": "recording"}},
        }
    )


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingChannel(RecordingChannel):
    """A RecordingChannel whose process dies at ``step`` of the batch after the first ``after`` ones."""

    def __init__(self, step: str, after: int, **options: Any) -> None:
        super().__init__("sms", **options)
        self.step, self.after = step, after

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        doomed = len(self.batches) == self.after
        if doomed and self.step == "claimed":
            die()
        if doomed and self.step == "sending":
            assert isinstance(self.options, RecordingOptions) and self.options.log_path
            await asyncio.to_thread(self._log, Path(self.options.log_path), batch[: len(batch) // 2])
            die()
        results = await super().send(batch)
        if doomed and self.step == "sent":
            die()
        return results


def die_after_recording(channel: KillingChannel, db: Database) -> None:
    """Kill the process as soon as the transaction that wrote the doomed batch's answers commits (a running
    worker's also leases its next batch, ``dispatch.record_and_claim``)."""
    record, transaction = dispatch.record_batch, db.transaction
    depth: contextvars.ContextVar[int] = contextvars.ContextVar("depth", default=0)
    doomed_written = False

    async def record_doomed(
        ctx: Any, alias: str, rows: list[Row], notices: dict[int, Row], results: list[SendResult]
    ) -> None:
        nonlocal doomed_written
        doomed_written = doomed_written or len(channel.batches) == channel.after + 1  # before its commit
        await record(ctx, alias, rows, notices, results)

    @contextlib.asynccontextmanager
    async def transaction_then_die() -> AsyncIterator[None]:
        level = depth.get()
        token = depth.set(level + 1)
        try:
            async with transaction():
                yield
        finally:
            depth.reset(token)
        if level == 0 and doomed_written:
            die()

    dispatch.record_batch = record_doomed
    db.transaction = transaction_then_die  # type: ignore[method-assign]


def recording_channel(log_path: str, options: dict[str, Any], db: Database) -> RecordingChannel:
    kill_at = os.environ.get(KILL_AT)
    if not kill_at:
        return RecordingChannel("sms", log_path=log_path, max_batch=100, **options)
    step, after = kill_at.split(":")
    assert step in STEPS, f"{KILL_AT}: no step {step!r}"
    channel = KillingChannel(step, int(after), log_path=log_path, max_batch=100, **options)
    if step == "recorded":
        die_after_recording(channel, db)
    return channel


class StallingKannel(KannelChannel):
    """Kannel's adapter that, after ``stall_after`` answered batches, hands each batch to Kannel and never
    answers: the process is stuck, or killed, between the sends and their record."""

    def __init__(self, alias: str, options: KannelOptions, stall_after: int) -> None:
        super().__init__(alias, options)
        self.stall_after, self.answered = stall_after, 0

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        results = await super().send(batch)
        if self.answered >= self.stall_after:
            await asyncio.Event().wait()
        self.answered += 1
        return results


async def main(db_url: str, log_path: str, options: dict[str, Any]) -> None:
    db = await open_database(db_url)
    if "kannel" in options:
        channel: RecordingChannel | KannelChannel = StallingKannel(
            "sms", KannelOptions.model_validate(options["kannel"]), options["stall_after"]
        )
    else:
        channel = recording_channel(log_path, options.get("channel", {}), db)
    engine = Engine(Store(db), crash_settings(db_url, **options.get("engine", {})), {"sms": channel})
    await engine.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}))
