"""The channels page of a node that runs no engine (an API node of a scale-out) shows the circuit breakers of
every live worker: each worker writes them with its heartbeat. Over HTTP, the workers being engines of their
own on the same database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from channels.failover import FailoverChannel
from notifier.api import create_app
from notifier.config import Settings
from notifier.engine import Engine
from notifier.engine.heartbeat import MISSED_BEATS, beat
from notifier.store import Store
from tests.console_sign_in import signed_in_session

_MEMBER = re.compile(r'<span class="breaker breaker-([a-z-]+)">(sms-[ab])：([^<]*)</span>')


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> Settings:
    outbox = {"type": "outbox", "root": str(tmp_path / "outbox")}
    return Settings.model_validate({
        "database": {"url": settings.database.url},
        "channels": {"sms-a": {"kind": "sms", **outbox}, "sms-b": {"kind": "sms", **outbox},
                     "sms-fo": {"kind": "sms", "type": "failover", "aliases": ["sms-a", "sms-b"]}},
    })  # fmt: skip


@pytest.fixture
async def api_node(config: Settings, store: Store) -> AsyncIterator[aiohttp.ClientSession]:
    """A signed-in console session on a node with no engine."""
    server = TestServer(create_app(config, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        session = await signed_in_session(store, str(server.make_url("")), department="environment", name="李文员")
        try:
            yield session
        finally:
            await session.close()
    finally:
        await server.close()


def worker(store: Store, config: Settings) -> Engine:
    return Engine(store, config, load_channels(config))


def fail_over(engine: Engine, member: str) -> None:
    adapter = engine.ctx.channels["sms-fo"]
    assert isinstance(adapter, FailoverChannel)
    breaker = adapter.breakers[member]
    for _ in range(breaker.threshold):
        breaker.failure()


async def breakers_shown(session: aiohttp.ClientSession) -> dict[str, tuple[str, str]]:
    async with session.get("/console/channels") as response:
        assert response.status == 200
        page = await response.text()
    row = page[page.index('id="alias-sms-fo"') :]
    row = row[: row.index("</tr>")]
    return {member: (state, label) for state, member, label in _MEMBER.findall(row)}


async def test_an_api_node_shows_every_live_workers_breakers(
    api_node: aiohttp.ClientSession, store: Store, config: Settings
) -> None:
    assert await breakers_shown(api_node) == {}  # no worker has beaten yet

    first, second = worker(store, config), worker(store, config)
    fail_over(first, "sms-a")  # the first worker has seen sms-a fail; the second has not yet
    await beat(first.ctx)
    await beat(second.ctx)
    assert await breakers_shown(api_node) == {
        "sms-a": ("open", "open 1 · closed 1"),
        "sms-b": ("closed", "closed"),
    }

    fail_over(second, "sms-a")
    await beat(second.ctx)
    assert await breakers_shown(api_node) == {"sms-a": ("open", "open"), "sms-b": ("closed", "closed")}


async def test_a_dead_workers_breakers_are_not_shown(
    api_node: aiohttp.ClientSession, store: Store, config: Settings
) -> None:
    silent, alive = worker(store, config), worker(store, config)
    fail_over(silent, "sms-b")
    # the silent worker's last beat is older than the missed beats that make a worker dead
    silent.ctx.clock = lambda: alive.ctx.clock() - config.engine.heartbeat_seconds * (MISSED_BEATS + 1)
    await beat(silent.ctx)
    await beat(alive.ctx)
    assert await breakers_shown(api_node) == {"sms-a": ("closed", "closed"), "sms-b": ("closed", "closed")}
