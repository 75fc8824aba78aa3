"""Query plans of the statements a worker runs once per batch: each delivery is found by its key."""

from __future__ import annotations

import sqlite3

import pytest

from notifier.config import Settings
from notifier.store import Store
from notifier.store.queries import load_queries

pytestmark = pytest.mark.sqlite_only("SQLite's query planner; the PostgreSQL block has its own plan")


async def test_recording_a_batch_finds_each_delivery_by_its_id(engine_store: Store, engine_settings: Settings) -> None:
    """``record_sent`` writes a batch's answers from a JSON list: each delivery must be looked up by its
    primary key, not found by walking every delivery the worker has leased once per element of the list
    (with two workers of 500, half a million row visits a batch: the engine sent ten times slower)."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    sql = load_queries("sqlite")["record_sent"]
    conn = sqlite3.connect(path)
    try:
        plan = [
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {"sent": "[]", "worker": "w", "now_iso": ""})
        ]
    finally:
        conn.close()
    on_deliveries = [step for step in plan if "deliveries" in step]
    assert on_deliveries and all("PRIMARY KEY" in step for step in on_deliveries), plan


def plan_of(path: str, query: str, params: dict[str, object]) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {load_queries('sqlite')[query]}", params)]
    finally:
        conn.close()


async def test_looking_for_a_finished_notice_finds_an_active_delivery_by_the_partial_index(
    engine_settings: Settings, engine_store: Store
) -> None:
    """The planner asks ``notice_to_finish`` after every pass in which a batch was recorded: while a notice is
    being sent, one queued or sending delivery must be found through ``deliveries_active`` at once, not by
    walking the notice's deliveries already sent (an OR'ed condition took the notice's key index and cost
    1.5 ms a pass for 20,000 residents, more as the notice grows)."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    for query in ("notice_to_finish", "finish_notices"):
        plan = plan_of(path, query, {"now_iso": ""})
        assert any("deliveries_active" in step for step in plan), (query, plan)
