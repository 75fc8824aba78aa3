"""Receipts kept before their send was recorded: housekeeping deletes those that found no send within the
retention (a day by default; fake clock), and keeps the recent ones and every receipt matched to a delivery."""

from __future__ import annotations

import time

import pytest

from notifier.config import Settings
from notifier.engine import Engine, ReceiptOutcome
from notifier.engine.housekeeping import early_receipts_kept
from notifier.store import Store
from notifier.store.deliveries import iso_at
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import run_sql
from tests.engine.conftest import approved, resident


async def test_unmatched_receipts_past_the_retention_are_deleted(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    await resident(engine_store)
    await approved(engine_store)
    await engine.run_until_idle()
    sent_id = f"sms-main-{channels['sms-main'].messages[0].delivery_id}-1"
    assert await engine.record_receipt("sms-main", sent_id, "delivered") is ReceiptOutcome.APPLIED
    for message_id in ("never-sent-old", "never-sent-new"):
        assert await engine.record_receipt("sms-main", message_id, "delivered") is ReceiptOutcome.UNKNOWN
    old = iso_at(clock() - early_receipts_kept(engine.ctx) - 60)
    await run_sql(
        engine_store.db, "UPDATE receipts SET received_at = ? WHERE provider_message_id IN (?, ?)",
        (old, sent_id, "never-sent-old"),
    )  # fmt: skip

    await engine.run_until_idle()

    rows = await run_sql(engine_store.db, "SELECT provider_message_id FROM receipts ORDER BY id")
    assert [row["provider_message_id"] for row in rows] == [sent_id, "never-sent-new"]


@pytest.mark.parametrize("offset_days", [-30, 30], ids=["clock-behind-the-wall-clock", "clock-ahead-of-it"])
async def test_an_early_receipt_is_stamped_and_purged_on_the_engines_clock(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], offset_days: int
) -> None:
    """The receipt's time and the purge's are both the engine's clock, however far it is from the wall clock: kept
    until the retention has passed on that clock, deleted right after (stamped on the wall clock, it was deleted
    at once with a clock ahead, and never with a clock behind)."""
    clock = FakeClock(time.time() + offset_days * 86400)
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock, jitter=lambda: 0.5)
    received = clock()
    assert await engine.record_receipt("sms-main", "never-sent", "delivered") is ReceiptOutcome.UNKNOWN
    [stamped] = await run_sql(engine_store.db, "SELECT received_at FROM receipts")
    kept = early_receipts_kept(engine.ctx)

    clock.advance(kept - 60)
    await engine.run_until_idle()
    rows = await run_sql(engine_store.db, "SELECT provider_message_id FROM receipts")
    assert [row["provider_message_id"] for row in rows] == ["never-sent"]

    clock.advance(120)
    await engine.run_until_idle()
    assert await run_sql(engine_store.db, "SELECT provider_message_id FROM receipts") == []
    assert stamped["received_at"] == iso_at(received)
