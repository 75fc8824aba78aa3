"""Migration 024: resident and area deliveries in one queue; a database upgraded to it keeps its history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notifier.store import Store, open_database
from notifier.store import sqlite as sqlite_module
from notifier.store.queries import migrations
from tests.engine.conftest import TOWN_A, VILLAGE_A1, approved, resident, seed

ONE_QUEUE = 24


async def test_an_upgraded_database_keeps_its_deliveries_receipts_and_printouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    before = [m for m in migrations("sqlite") if m[0] != ONE_QUEUE]
    monkeypatch.setattr(sqlite_module, "migrations", lambda dialect: before)
    db = await open_database(url)
    try:
        await db.migrate()
        store = Store(db)
        await seed(store)
        someone = await resident(store)
        notice = await approved(store, target={"areas": [TOWN_A]}, channels=["sms", "bulletin"])
        assert isinstance(db, sqlite_module.SqliteDatabase)
        writer = db.writer
        stamp = "2026-01-01T00:00:00+00:00"
        await writer.execute(
            "INSERT INTO deliveries (id, notice_id, subscriber_id, channel, alias, state, address,"
            " provider_message_id, created_at, updated_at, sent_at, delivered_at, confirmed_at)"
            " VALUES (7, ?, ?, 'sms', 'sms', 'confirmed', ?, 'd7', ?, ?, ?, ?, ?)",
            (notice.id, someone.id, someone.phone, stamp, stamp, stamp, stamp, stamp),
        )
        await writer.execute(
            "INSERT INTO receipts (id, delivery_id, alias, provider_message_id, status, received_at)"
            " VALUES (3, 7, 'sms', 'd7', 'delivered', ?)",
            (stamp,),
        )
        await writer.execute(
            "INSERT INTO area_deliveries (id, notice_id, area_code, channel, alias, state, attempts, due_at,"
            " poll_until, provider_message_id, created_at, updated_at, sent_at)"
            " VALUES (1, ?, ?, 'bulletin', 'board', 'sent', 2, 1000.0, 2000.0, 'job-5', ?, ?, ?)",
            (notice.id, VILLAGE_A1, stamp, stamp, stamp),
        )
    finally:
        await db.close()

    monkeypatch.undo()
    db = await open_database(url)
    try:
        assert await db.migrate() == ["sqlite_024_one_delivery_queue.sql"]
        store = Store(db)
        (kept,) = (await store.list_deliveries(notice.id, None, 10))[0]  # residents' deliveries only
        assert (kept.id, kept.subscriber_id, kept.state) == (7, someone.id, "confirmed")
        found = await db.fetch_one("find_delivery_by_provider_id", {"alias": "sms", "provider_message_id": "d7"})
        assert found is not None and found["id"] == 7
        with sqlite3.connect(f"{tmp_path}/old.db") as conn:
            assert conn.execute("SELECT delivery_id, status FROM receipts").fetchall() == [(7, "delivered")]
            assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%area_deliveries%'").fetchall() == []
        (printout,) = await store.list_area_deliveries(notice.id)
        assert (printout["area_code"], printout["state"], printout["attempts"], printout["provider_message_id"]) == (
            VILLAGE_A1, "sent", 2, "job-5",
        )  # fmt: skip
        assert printout["id"] > 7  # after the residents' ids, which receipts and confirm links name
        (polled,) = await store.claim_area_polls(1500.0, 1560.0, 10)
        assert (polled["id"], polled["poll_until"]) == (printout["id"], 2000.0)
        read = await store.get_notice(notice.id)
        assert read.counts == {"sms": {"confirmed": 1}, "bulletin": {"sent": 1}}
        assert read.areas_reached == 1
    finally:
        await db.close()
