"""The fault matrix's harness: the real Engine running its own tasks, real adapters, fakes on 127.0.0.1.

The engine runs as in production (``Engine.start()``: a planner and workers that poll, claim, send and
record by themselves); the test only breaks things and watches. Its clock is a ``FakeClock`` the test moves
to stand for the minutes a provider asks us to wait (a Retry-After, a confirm window), so a test never
sleeps for them; everything else (HTTP timeouts, polling) runs in real time. A test waits for an event
(a state in the store, a request at the fake) with ``until``, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from channels.base import Channel
from notifier.config import Settings
from notifier.domain.models import Notice
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock
from tests.databases import database_url
from tests.engine.conftest import delivery_rows, seeded_store

ENGINE = {"workers": 1, "batch_size": 20, "lease_seconds": 30, "poll_interval": 0.02, "max_attempts": 5}
"""One worker per alias, so a batch in flight is one batch; leases far longer than any send here."""

WITHIN = 60.0  # seconds a test waits for an event before it fails; far above what any of them needs


def fault_settings(tmp_path: Path, channels: Mapping[str, Mapping[str, Any]], **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "faults.db")},
            "engine": {**ENGINE, **engine},
            "channels": channels,
        }
    )


@pytest.fixture
async def fault_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with seeded_store(database_url(tmp_path, "faults.db")) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextlib.asynccontextmanager
async def running(
    store: Store, settings: Settings, channels: Mapping[str, Channel], clock: Callable[[], float]
) -> AsyncIterator[Engine]:
    """The engine started as the service starts it, stopped (its batch in flight recorded) at the end."""
    engine = Engine(store, settings, dict(channels), clock=clock, jitter=lambda: 0.5)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(grace=5)


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = WITHIN) -> None:
    """Wait for ``check()`` to hold (polled every 20 ms); fail naming ``what`` if it never does."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polling state another task writes
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"never happened within {within:.0f} s: {what}")


async def counts(store: Store, notice: Notice) -> dict[str, dict[str, int]]:
    """What the issuer sees on the notice: deliveries per channel and state."""
    return (await store.get_notice(notice.id)).counts


async def settled(store: Store, notice: Notice) -> bool:
    """Every delivery of the notice is out of the queue (sent, delivered, fallback, failed or skipped)."""
    return all(row["state"] not in ("queued", "sending") for row in await delivery_rows(store, notice.id))


async def states(store: Store, notice: Notice) -> Counter[tuple[str, str]]:
    """(channel, state) of every delivery of the notice."""
    return Counter((row["channel"], row["state"]) for row in await delivery_rows(store, notice.id))


async def deliveries_by_state(store: Store, notice: Notice, state: str) -> list[dict[str, Any]]:
    return [row for row in await delivery_rows(store, notice.id) if row["state"] == state]
