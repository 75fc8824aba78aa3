"""One scheduler at a time on PostgreSQL: the leader holds an advisory lock on its own connection; when it
is killed (SIGKILL) a standby takes the leadership over within seconds (``engine.leadership``)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from asyncio.subprocess import Process

import pytest

from tests.databases import postgres_database
from tests.scale.workers import ROOT

TAKEOVER_LIMIT = 10.0  # seconds the test waits for the standby; the measured time is printed


@pytest.fixture
def dsn() -> str:
    """A database of this test's own on the test server (skips when no server answers)."""
    return postgres_database(migrated=False)


async def start(dsn: str, name: str) -> Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.scale.leader_process", dsn, name,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )


async def next_line(process: Process, within: float = 30.0) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), within)).decode().strip()


@pytest.mark.peer("postgres")
async def test_a_standby_takes_over_when_the_leader_is_killed(dsn: str) -> None:
    name = f"test-{uuid.uuid4().hex}"  # a lock of this test alone
    first = await start(dsn, name)
    second = None
    try:
        assert await next_line(first) == "this process now leads the scheduling"
        second = await start(dsn, name)
        assert await next_line(second) == "another process leads the scheduling; this one stands by"
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await first.wait()
        assert await next_line(second, TAKEOVER_LIMIT) == "this process now leads the scheduling"
        print(f"the standby led {time.monotonic() - killed_at:.2f} s after the leader was killed")
        third = await start(dsn, name)  # and the new leader keeps the others out
        try:
            assert await next_line(third) == "another process leads the scheduling; this one stands by"
        finally:
            assert third.stdin is not None
            third.stdin.close()
            await asyncio.wait_for(third.wait(), 30)
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
