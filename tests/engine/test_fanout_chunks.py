"""The fan-out's chunk: ``[engine] fanout_batch_size`` when set, else the database's own size."""

from __future__ import annotations

from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store

from .conftest import approved, count_fan_out_chunks, delivery_rows, resident


async def count_chunks(engine: Engine, engine_store: Store) -> tuple[int, int]:
    """(chunk transactions, deliveries) of one notice to the whole test county."""
    notice = await approved(engine_store)
    chunks = count_fan_out_chunks(engine_store)
    await engine.run_until_idle()
    return len(chunks), len(await delivery_rows(engine_store, notice.id))


async def test_unset_the_database_decides_the_chunk(
    engine: Engine, engine_store: Store, engine_settings: Settings
) -> None:
    """PostgreSQL fans out in larger chunks than SQLite (``Database.fanout_chunk``) when no size is set."""
    assert engine_settings.engine.fanout_batch_size is None
    engine_store.db.fanout_chunk = 10
    for _ in range(25):
        await resident(engine_store)
    assert await count_chunks(engine, engine_store) == (3, 25)


async def test_a_set_size_wins(engine: Engine, engine_store: Store, engine_settings: Settings) -> None:
    engine_settings.engine.fanout_batch_size = 100
    engine_store.db.fanout_chunk = 10
    for _ in range(25):
        await resident(engine_store)
    assert await count_chunks(engine, engine_store) == (1, 25)
