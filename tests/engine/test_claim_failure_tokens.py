"""A claim that raises gives the rate-limit tokens it was granted back to the shared bucket
(``dispatch.claim_next``, ``shared_ratelimit``): the alias keeps its rate after a database error."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.config import Settings
from notifier.engine import Engine
from notifier.engine.shared_ratelimit import bucket_key
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved, resident

RATE = 2  # messages per second on sms-main


class ClaimRefused(Exception):
    """What the database raises for the claim (locked, connection lost)."""


def refuse_once(store: Store, method: str) -> list[int]:
    """Make ``store.<method>`` raise on its next call only; the list counts the refusals."""
    real = getattr(store, method)
    refused: list[int] = []

    async def claim(*args: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(1)
            raise ClaimRefused("the database refused the claim")
        return await real(*args, **kwargs)

    setattr(store, method, claim)
    return refused


async def bucket_tokens(engine: Engine, alias: str, now: float) -> float:
    store, bucket = engine.ctx.store, engine.ctx.limiters[alias].buckets[0]
    key = bucket_key(alias, bucket)
    async with store.db.transaction():
        tokens, _ = (await store.locked_rate_buckets([(key, bucket.capacity)], now))[key]
    return tokens


@pytest.mark.parametrize("method", ["claim_deliveries", "claim_direct_messages"])
async def test_tokens_granted_to_a_claim_that_raises_go_back_to_the_shared_bucket(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock,
    method: str,
) -> None:
    engine_settings.channels["sms-main"].rate_per_second = RATE
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    for _ in range(RATE + 1):
        await resident(engine_store)
    await approved(engine_store)
    refused = refuse_once(engine_store, method)
    with pytest.raises(ClaimRefused):
        await engine.run_once()  # fans the notice out, then the claim on sms-main raises
    assert refused == [1]
    assert await bucket_tokens(engine, "sms-main", clock()) == RATE  # the granted tokens are back, once
    await engine.run_until_idle()  # the clock has not moved: only the tokens given back can send
    assert len(channels["sms-main"].messages) == RATE
    assert await bucket_tokens(engine, "sms-main", clock()) == 0
