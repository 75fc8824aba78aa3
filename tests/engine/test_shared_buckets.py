"""The shared rate buckets (``engine.shared_ratelimit``) on either database: a take reads and locks every
bucket of the alias in one statement and writes them back in one, and takes running at once, each as a
process of its own would (its own limiter), never grant more than the buckets hold."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from notifier.engine.ratelimit import RateLimiter
from notifier.engine.shared_ratelimit import give_back_shared, take_shared
from notifier.store import Store

NOW = 1_800_000_000.0


def count_statements(store: Store) -> Counter[str]:
    """The named statements the store's database runs from now on, by name."""
    counted: Counter[str] = Counter()
    db: Any = store.db
    for method in ("fetch_all", "fetch_one", "execute"):
        original = getattr(db, method)

        def counting(query: str, params: Any = None, _original: Any = original) -> Any:
            counted[query] += 1
            return _original(query, params)

        setattr(db, method, counting)
    return counted


async def test_a_take_reads_and_writes_all_buckets_of_an_alias_in_one_statement_each(engine_store: Store) -> None:
    counted = count_statements(engine_store)
    limiter = RateLimiter(per_second=5, per_minute=100)
    assert await take_shared(engine_store, "sms-main", limiter, 50, NOW) == 5
    assert counted == {"rate_buckets_lock": 1, "rate_buckets_save": 1}
    await give_back_shared(engine_store, "sms-main", limiter, 2, NOW)
    assert counted == {"rate_buckets_lock": 2, "rate_buckets_save": 2}
    other_process = RateLimiter(per_second=5, per_minute=100)
    assert await take_shared(engine_store, "sms-main", other_process, 50, NOW) == 2  # the two given back
    assert await take_shared(engine_store, "sms-main", other_process, 50, NOW + 1) == 5  # a second's refill
    stored = await engine_store.locked_rate_buckets([("sms-main:1", 5), ("sms-main:60", 100)], NOW + 1)
    # per minute: 100 - 5 + 2 - 2, a second's refill (100 / 60), - 5
    assert stored == {"sms-main:1": (0.0, NOW + 1), "sms-main:60": (pytest.approx(90 + 100 / 60), NOW + 1)}


async def test_takes_at_once_share_the_buckets(engine_store: Store) -> None:
    """Twenty takes at once (on PostgreSQL over the pool's connections, waiting on each other's row locks)
    grant the per-second bucket's ten tokens, no more."""
    granted = await asyncio.gather(
        *(take_shared(engine_store, "sms-main", RateLimiter(per_second=10, per_minute=600), 3, NOW)
          for _ in range(20))
    )  # fmt: skip
    assert sum(granted) == 10
