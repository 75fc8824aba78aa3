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


async def test_looking_for_a_finished_notice_finds_an_active_delivery_by_the_partial_indexes(
    engine_settings: Settings, engine_store: Store
) -> None:
    """The planner asks ``notice_to_finish`` after every pass in which a batch was recorded: while a notice is
    being sent, one queued delivery must be found through ``deliveries_queued`` at once, not by walking the
    notice's deliveries already sent (an OR'ed condition took the notice's key index and cost 1.5 ms a pass for
    20,000 residents, more as the notice grows); the rows being sent are looked for among the leases
    (``deliveries_leases``, the batches in flight), never through the notice's key index."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    for query in ("notice_to_finish", "finish_notices"):
        plan = plan_of(path, query, {"now_iso": ""})
        assert "SEARCH d USING INDEX deliveries_queued (notice_id=?)" in plan, (query, plan)
        assert "SCAN d USING INDEX deliveries_leases" in plan, (query, plan)
        # the one use of the key index is the last test, the sent messages inside their confirm window
        assert sum("sqlite_autoindex_deliveries_1" in step for step in plan) == 1, (query, plan)


async def test_the_leases_are_read_through_their_index(engine_settings: Settings, engine_store: Store) -> None:
    """``recover_leases`` (every housekeeping pass) and ``release_worker_leases`` read the rows being sent through
    ``deliveries_leases``, which holds only those; with another partial index over them the planner scanned that
    one, every queued delivery (sqlite_029_one_lease_index.sql)."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    recover = plan_of(path, "recover_leases", {"now": 0.0, "now_iso": ""})
    assert recover == ["SCAN deliveries USING INDEX deliveries_leases"], recover
    release = plan_of(path, "release_worker_leases", {"dead_before": 0.0, "worker": "w", "now_iso": ""})
    assert "SEARCH deliveries USING INDEX deliveries_leases (leased_by=?)" in release, release


async def test_the_purge_of_early_receipts_reads_only_the_unmatched_ones(
    engine_settings: Settings, engine_store: Store
) -> None:
    """``purge_early_receipts`` (every housekeeping pass) reads the unmatched receipts through an index (the
    NULL entries of receipts_delivery, or receipts_unmatched), never every receipt matched to a delivery."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    plan = plan_of(path, "purge_early_receipts", {"before_iso": ""})
    through = (
        "SEARCH receipts USING INDEX receipts_delivery (delivery_id=?)",
        "SCAN receipts USING INDEX receipts_unmatched",
    )
    assert len(plan) == 1 and plan[0] in through, plan


async def test_the_channels_page_reads_deliveries_through_indexes(
    engine_settings: Settings, engine_store: Store
) -> None:
    """The console's channels page counts the queue, the last hour's sends and its errors: through the partial
    indexes of the queue and those of migration 032 (the sends, the rows with an error), never by reading every
    delivery ever made."""
    path = engine_settings.database.url.removeprefix("sqlite:///")
    queue = plan_of(path, "channel_queue", {})
    assert "SCAN deliveries USING INDEX deliveries_claim" in queue, queue
    assert "SCAN deliveries USING INDEX deliveries_leases" in queue, queue
    sent = plan_of(path, "channel_sent_per_minute", {"since": ""})
    assert sent[0] == "SEARCH deliveries USING COVERING INDEX deliveries_sent (sent_at>?)", sent
    errors = plan_of(path, "channel_errors", {"since": ""})
    assert errors[0] == "SEARCH deliveries USING INDEX deliveries_errors (updated_at>?)", errors
    for plan in (queue, sent, errors):
        assert all("INDEX" in step for step in plan if "deliveries" in step), plan
