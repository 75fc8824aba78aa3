"""A notice to a few listed residents reads their part of the resident table, not all of it."""

from __future__ import annotations

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store

from .conftest import approved, count_fan_out_chunks, delivery_rows, resident


async def test_a_notice_to_listed_residents_fans_out_only_where_they_are(
    engine: Engine, engine_store: Store, engine_settings: Settings
) -> None:
    """Staff send a notice to three residents of a county of a million: the fan-out went through the whole
    table in chunks of 2,000 (500 transactions, seconds of the planner, and every notice approved after it
    waited). Only the chunks holding listed residents can match."""
    engine_settings.engine.fanout_batch_size = 10
    people = [await resident(engine_store) for _ in range(60)]
    listed = [people[3].id, people[47].id]
    notice = await approved(engine_store, target={"subscribers": listed})
    chunks = count_fan_out_chunks(engine_store)
    await engine.run_until_idle()
    assert sorted(row["subscriber_id"] for row in await delivery_rows(engine_store, notice.id)) == listed
    assert len(chunks) == 1
