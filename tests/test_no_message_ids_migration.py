"""Migration 033: the sends older versions recorded under "None" or an empty message id lose it."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.store import Store, open_database
from notifier.store import postgres as postgres_module
from notifier.store import sqlite as sqlite_module
from notifier.store.queries import migrations
from tests.databases import on_postgres, postgres_database, run_sql
from tests.engine.conftest import approved, resident, seed

NO_MESSAGE_IDS = 33
STAMP = "2026-01-01T00:00:00+00:00"
RECORDED = ["None", "", " None ", "\t", "gw-1", "none", None]  # as older versions (or a gateway) left them
CLEARED = [None, None, None, None, "gw-1", "none", None]  # message_id_of: only the first four name no message


async def test_sends_recorded_without_a_message_id_lose_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres_database(migrated=False) if on_postgres() else f"sqlite:///{tmp_path}/old.db"
    for module in (sqlite_module, postgres_module):  # the database as migration 032 left it
        monkeypatch.setattr(
            module, "migrations", lambda dialect: [m for m in migrations(dialect) if m[0] < NO_MESSAGE_IDS]
        )
    db = await open_database(url)
    try:
        await db.migrate()
        store = Store(db)
        await seed(store)
        notice = await approved(store)
        for message_id in RECORDED:
            someone = await resident(store)
            await run_sql(
                db,
                "INSERT INTO deliveries (notice_id, subscriber_id, channel, alias, state, address, provider_message_id,"
                " created_at, updated_at, sent_at) VALUES (?, ?, 'sms', 'sms', 'sent', ?, ?, ?, ?, ?)",
                (notice.id, someone.id, someone.phone, message_id, STAMP, STAMP, STAMP),
            )
        found = await db.fetch_one("find_delivery_by_provider_id", {"alias": "sms", "provider_message_id": "None"})
        assert found is not None  # what a receipt naming "None" found before
    finally:
        await db.close()

    monkeypatch.undo()
    db = await open_database(url)
    try:
        applied = await db.migrate()
        rows = await run_sql(db, "SELECT provider_message_id, state, sent_at FROM deliveries ORDER BY id")
        assert [row["provider_message_id"] for row in rows] == CLEARED
        assert applied[:1] == [f"{db.dialect}_033_no_message_ids.sql"]  # then any later migrations
        assert {(row["state"], row["sent_at"]) for row in rows} == {("sent", STAMP)}
        for legacy_id in ("None", ""):
            found = await db.fetch_one(
                "find_delivery_by_provider_id", {"alias": "sms", "provider_message_id": legacy_id}
            )
            assert found is None
    finally:
        await db.close()
