"""A slow provider: the adapter starts no request it could not finish within the batch's time (``SendWindow``).

Such a message comes back ``Retry(started=False)``; the engine queues it again at once without counting a try,
so the engine can claim whole batches (not a worst case of the pool's turns) and still never cut a batch off
half-sent. A Kannel-like server answering after a delay stands in for a slow gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from channels.base import OutboundMessage, Retry, SendWindow, Sent, send_window
from channels.kannel import KannelChannel
from notifier.config import Settings
from notifier.engine import Engine
from notifier.engine.dispatch import dispatch_alias
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from tests.databases import database_url
from tests.engine.conftest import approved, resident, seeded_store

DELAY = 0.2  # the server's answer time
TIMEOUT = 0.5  # the adapter's request timeout


class SlowKannel:
    """``GET /cgi-bin/sendsms`` answered ``202`` after ``DELAY`` seconds; ``received`` lists each ``to``."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.url = ""
        self.delay = DELAY

    async def sendsms(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        self.received.append(request.query["to"])
        return web.Response(status=202, text="0: Accepted for delivery")


@pytest.fixture
async def slow_kannel() -> AsyncIterator[SlowKannel]:
    server = SlowKannel()
    app = web.Application()
    app.router.add_get("/cgi-bin/sendsms", server.sendsms)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/cgi-bin/sendsms"
    try:
        yield server
    finally:
        await runner.cleanup()


def kannel(url: str, timeout: float = TIMEOUT) -> dict[str, object]:
    return {"url": url, "username": "u", "password": "p", "max_connections": 1, "timeout": timeout}


def message(i: int) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i, notice_id=1, channel="sms", alias="sms", recipient=f"+8613900000{i:03d}", text="通知",
        idempotency_key=f"k{i}",
    )  # fmt: skip


async def test_a_request_that_could_not_be_answered_in_time_is_not_started(slow_kannel: SlowKannel) -> None:
    channel = KannelChannel("sms", KannelChannel.Options.model_validate(kannel(slow_kannel.url)))
    await channel.open()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0  # one connection, 0.2 s a request: the 6th turn comes at 1.0 s at the earliest
    token = send_window.set(SendWindow(deadline))
    try:
        results = await channel.send([message(i) for i in range(6)])
        finished = loop.time()
    finally:
        send_window.reset(token)
        await channel.close()

    sent = [m for m, r in zip(range(6), results, strict=True) if isinstance(r, Sent)]
    unstarted = [m for m, r in zip(range(6), results, strict=True) if isinstance(r, Retry) and not r.started]
    assert sent and unstarted and len(sent) + len(unstarted) == 6, results
    assert sorted(slow_kannel.received) == sorted(message(i).recipient for i in sent)  # none of the others went
    assert finished <= deadline + DELAY  # the last request started early enough to be answered by then


async def test_without_a_deadline_every_request_is_started(slow_kannel: SlowKannel) -> None:
    channel = KannelChannel("sms", KannelChannel.Options.model_validate(kannel(slow_kannel.url)))
    await channel.open()
    try:
        results = await channel.send([message(i) for i in range(3)])
    finally:
        await channel.close()
    assert all(isinstance(r, Sent) for r in results)


async def test_the_engine_claims_a_whole_batch_and_queues_the_unstarted_again_untried(
    tmp_path: Path, slow_kannel: SlowKannel
) -> None:
    """Lease 4 s: a batch has 3.2 s and, with a 1.5 s request timeout, its requests must start by 1.7 s, so of a
    batch of 8 on one connection answering in 0.4 s only the first few go out. The whole batch is claimed all
    the same (the old worst-case limit, turns of the timeout on one connection, claimed 2); the rest are queued
    again with their try taken back, and later batches send them: each resident reached once. (The timeout is
    well above the answer time so that a loaded machine's slow turn of the event loop does not time a request
    out: such a try counts, which is not what this test is about.)"""
    slow_kannel.delay = 0.4
    options = kannel(slow_kannel.url, timeout=1.5)
    settings = Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "engine.db")},
            "engine": {"workers": 1, "poll_interval": 0.05, "lease_seconds": 4.0, "batch_size": 8},
            "channels": {"sms": {"kind": "sms", "type": "kannel", **options}},
        }
    )
    async with seeded_store(settings.database.url) as store:
        phones = [(await resident(store)).phone for _ in range(8)]
        notice = await approved(store)
        channel = KannelChannel("sms", KannelChannel.Options.model_validate(options))
        engine = Engine(store, settings, {"sms": channel})
        await channel.open()
        try:
            assert await fan_out_next(engine.ctx) == notice.id
            assert await dispatch_alias(engine.ctx, "sms") == 8  # the whole batch claimed and answered
            first = await rows(store, notice.id)
            sent_first = [r for r in first if r["state"] == "sent"]
            back = [r for r in first if r["state"] == "queued"]
            assert sent_first and back and len(sent_first) + len(back) == 8, first
            assert all(r["attempts"] == 0 and "not started" in r["last_error"] for r in back)
            assert len(slow_kannel.received) == len(sent_first)

            for _ in range(8):  # bounded: each batch sends at least one
                if not await dispatch_alias(engine.ctx, "sms"):
                    break
        finally:
            await channel.close()
        final = await rows(store, notice.id)
    assert sorted(slow_kannel.received) == sorted(phones)  # everyone once, no one twice
    assert all(r["state"] == "sent" and r["attempts"] == 1 for r in final), final


async def rows(store: Store, notice_id: int) -> list[dict[str, Any]]:
    deliveries, _ = await store.list_deliveries(notice_id, None, 100)
    return [d.model_dump() for d in deliveries]
