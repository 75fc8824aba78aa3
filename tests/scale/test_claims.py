"""Claims on PostgreSQL meet no one else's rows: two workers claiming at the same moment, one of them still
inside its transaction, get different deliveries (``FOR UPDATE SKIP LOCKED``, postgres_claim_queries.sql),
and the second does not wait for the first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from notifier.engine.context import EngineContext
from notifier.engine.fanout import fan_out_next
from notifier.testing import RecordingChannel
from tests.databases import postgres_database
from tests.engine.conftest import CHANNELS, approved, make_settings, resident, seeded_store

PEOPLE = 40


@pytest.mark.peer("postgres")
async def test_two_claims_at_once_take_different_rows_without_waiting(tmp_path: Path) -> None:
    url = postgres_database()
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
    async with seeded_store(url) as store:
        for _ in range(PEOPLE):
            await resident(store)
        await approved(store)
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in CHANNELS})
        while await fan_out_next(ctx) is not None:  # PEOPLE deliveries queued on sms-main
            pass
        now = time.time()
        first_claimed = asyncio.Event()
        release = asyncio.Event()

        async def first() -> list[int]:
            async with store.db.transaction():  # the claim stays open, its rows locked, until released
                rows = await store.claim_deliveries("sms-main", "worker-one", now, 60, PEOPLE // 2)
                first_claimed.set()
                await release.wait()
            return [row["id"] for row in rows]

        async def second() -> list[int]:
            await first_claimed.wait()
            try:  # it must not wait for the first claim's transaction
                rows = await asyncio.wait_for(store.claim_deliveries("sms-main", "worker-two", now, 60, PEOPLE), 10)
            finally:
                release.set()
            return [row["id"] for row in rows]

        one, two = await asyncio.wait_for(asyncio.gather(first(), second()), 30)
    assert len(one) == PEOPLE // 2 and len(two) == PEOPLE - PEOPLE // 2
    assert not set(one) & set(two)
