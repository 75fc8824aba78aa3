"""Two code requests for one number at once, on PostgreSQL, where their transactions run side by side: the
second waits for the first and is refused by the minute's limit, instead of counting only what was committed
before it and sending a second code (a burst of requests sent as many codes as it held).

Interleaved by hand, as ``tests/engine/test_receipt_race.py`` does: the first request stops inside its transaction
just after it counted, the second runs until it has counted too or waits for a lock the first holds, then the first
commits and the second finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from notifier.residents import flow
from notifier.residents.flow import Ask, Asked, Channel, Limited
from notifier.store import Store
from tests.databases import postgres_database
from tests.engine.conftest import VILLAGE_A1, seeded_store
from tests.engine.test_receipt_race import Look, looked_or_stopped

pytestmark = pytest.mark.peer("postgres")


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    async with seeded_store(postgres_database()) as store:
        yield store


@pytest.mark.parametrize(
    ("first_ip", "second_phone", "refused_by"),
    [("192.0.2.1", "+8613800138000", "minute"), ("192.0.2.2", "+8613900139000", "network")],
    ids=["one number", "one client address"],
)
async def test_two_requests_counting_before_either_commits_send_one_code(
    pg_store: Store, first_ip: str, second_phone: str, refused_by: str
) -> None:
    now = 1_800_000_000.0
    out = flow.Outside(
        store=pg_store, secret=SecretStr("s" * 32), public_url="https://notify.example.test", now=now,
        first_alias=lambda kind: "sms-main",
    )  # fmt: skip
    topics = ["air-quality"]
    for n in range(flow.IP_PER_HOUR - 1):  # the client address "192.0.2.2" has one request left this hour
        earlier = Ask("subscribe", Channel.SMS, f"+861370000{n:04d}", "192.0.2.2", "李明", VILLAGE_A1, topics)
        assert isinstance(await flow.request_code(out, earlier), Asked)
    first = Ask("subscribe", Channel.SMS, "+8613800138000", first_ip, "李明", VILLAGE_A1, topics)
    second = Ask("subscribe", Channel.SMS, second_phone, "192.0.2.2", "李明", VILLAGE_A1, topics)

    count = Look(pg_store, "count_subscription_requests", stop=True)
    first_task = asyncio.create_task(flow.request_code(out, first))
    await asyncio.wait_for(count.done.wait(), 10)  # the first has counted; its transaction is open
    count.done.clear()  # set again by the second's count, if it gets that far
    second_task = asyncio.create_task(flow.request_code(out, second))
    await asyncio.wait_for(looked_or_stopped(pg_store, count), 10)
    count.go.set()
    answers = await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)

    assert isinstance(answers[0], Asked)
    assert answers[1] == Limited(refused_by, {"minute": 60, "network": 3600}[refused_by])
