"""``HttpChannel.send_each``: a batch on as many lanes as the pool has connections, results in the batch's order,
and no message started after one raised (the engine then answers the whole batch Retry and sends it again)."""

from __future__ import annotations

import asyncio

import pytest

from channels.base import OutboundMessage, SendResult, Sent
from channels.http import HttpChannel, HttpOptions


class Lanes(HttpChannel):
    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        raise NotImplementedError  # the tests call send_each with their own send_one


def batch(size: int) -> list[OutboundMessage]:
    return [
        OutboundMessage(delivery_id=n, notice_id=1, channel="sms", alias="lanes", recipient=f"+8613900000{n:03d}",
                        text="t", idempotency_key=f"k{n}")
        for n in range(size)
    ]  # fmt: skip


async def test_results_come_in_the_batch_order_with_at_most_a_lane_per_connection() -> None:
    channel = Lanes("lanes", HttpOptions(max_connections=3))
    in_flight, most = 0, 0

    async def send_one(message: OutboundMessage) -> SendResult:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(message.delivery_id % 4):  # answers come back out of order
            await asyncio.sleep(0)
        in_flight -= 1
        return Sent(f"m{message.delivery_id}")

    results = await channel.send_each(batch(10), send_one)
    assert results == [Sent(f"m{n}") for n in range(10)]
    assert most == 3


async def test_no_message_is_started_after_one_raised() -> None:
    channel = Lanes("lanes", HttpOptions(max_connections=2))
    started: list[int] = []
    second_may_answer = asyncio.Event()

    async def send_one(message: OutboundMessage) -> SendResult:
        started.append(message.delivery_id)
        if message.delivery_id == 0:
            await asyncio.sleep(0)
            raise RuntimeError("the adapter broke")
        if message.delivery_id == 1:
            await second_may_answer.wait()
        return Sent(f"m{message.delivery_id}")

    with pytest.raises(RuntimeError):
        await channel.send_each(batch(10), send_one)
    lanes_left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    second_may_answer.set()
    await asyncio.gather(*lanes_left, return_exceptions=True)  # the other lane, to its end
    assert started == [0, 1]
