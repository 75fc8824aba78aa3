"""A receipt that comes back while the worker records its send, on PostgreSQL, where the two transactions run side
by side: whichever looks first, the receipt ends applied.

The hook's transaction looks for the sent delivery and, finding none, keeps the receipt as an early one; the
worker's transaction records the send, then looks for early receipts. Under READ COMMITTED each look sees only
what was committed before it, so with both looks made before either side commits, the receipt was kept and
never applied (the Kannel DLR test's delivery stayed ``sent`` now and then). Here the two are interleaved by
hand: the first side stops inside its transaction just after its look, the second runs until it has looked or
waits for a lock the first holds, then the first commits and the second finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from notifier.config import Settings
from notifier.engine import Engine, record_receipt
from notifier.engine.dispatch import dispatch_batch
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.databases import postgres_database, run_sql, url_of
from tests.engine.conftest import CHANNELS, approved, resident, seeded_store

pytestmark = pytest.mark.peer("postgres")

ALIAS = "sms-main"


class Look:
    """A store method wrapped as one side's look: its first call sets ``done`` once it has returned and, when
    the side is to stop there, waits for ``go`` (still inside the side's transaction)."""

    def __init__(self, store: Store, method: str, *, stop: bool) -> None:
        self.done, self.go = asyncio.Event(), asyncio.Event()
        if not stop:
            self.go.set()
        wrapped: Callable[..., Awaitable[Any]] = getattr(store, method)

        async def look(*args: Any) -> Any:
            first = not self.done.is_set()
            result = await wrapped(*args)
            if first:
                self.done.set()
                await self.go.wait()
            return result

        setattr(store, method, look)


async def waiting_for_a_lock(store: Store) -> bool:
    """Whether a connection to the test's database waits for a lock (a row's, a transaction's, an advisory)."""
    query = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    return bool(await run_sql(store.db, query))


async def looked_or_stopped(store: Store, look: Look) -> None:
    """Until the second side has made its look, or waits for a lock (the first side holds it until it commits)."""
    while not await waiting_for_a_lock(store):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(look.done.wait(), 0.01)
            return


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    async with seeded_store(postgres_database()) as store:
        yield store


@pytest.mark.parametrize("first", ["hook", "worker"])
async def test_a_receipt_and_the_record_of_its_send_each_looking_before_the_other_commits(
    pg_store: Store, first: str
) -> None:
    settings = Settings.model_validate({"database": {"url": url_of(pg_store.db)}, "channels": CHANNELS})
    channel = RecordingChannel(ALIAS)
    engine = Engine(pg_store, settings, {ALIAS: channel})
    await resident(pg_store)
    notice = await approved(pg_store)
    while await fan_out_next(engine.ctx) is not None:
        pass
    _, unrecorded = await dispatch_batch(engine.ctx, ALIAS, None)  # handed to the channel, not recorded
    assert unrecorded is not None
    [sent] = channel.messages
    delivery_id, message_id = sent.delivery_id, f"{ALIAS}-{sent.delivery_id}-1"  # the recording channel's answer

    hook_look = Look(pg_store, "find_delivery_by_provider_id", stop=first == "hook")
    worker_look = Look(pg_store, "early_receipts", stop=first == "worker")
    sides = {
        "hook": (lambda: record_receipt(pg_store, ALIAS, message_id, "delivered", context=engine.ctx), hook_look),
        "worker": (unrecorded.write, worker_look),
    }
    second = "worker" if first == "hook" else "hook"
    (start_first, first_look), (start_second, second_look) = sides[first], sides[second]

    first_task = asyncio.create_task(start_first())
    await asyncio.wait_for(first_look.done.wait(), 10)  # the first side has looked; its transaction is open
    second_task = asyncio.create_task(start_second())
    await asyncio.wait_for(looked_or_stopped(pg_store, second_look), 10)
    first_look.go.set()
    await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)

    rows = await run_sql(pg_store.db, "SELECT state FROM deliveries WHERE id = ?", (delivery_id,))
    receipts = await run_sql(pg_store.db, "SELECT delivery_id FROM receipts WHERE provider_message_id = ?",
                             (message_id,))
    assert rows == [{"state": "delivered"}]
    assert receipts == [{"delivery_id": delivery_id}]  # matched to its delivery, not left as an early receipt
    assert (await pg_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1}}
