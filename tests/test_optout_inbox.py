"""A "TD" is never lost: a reply the database cannot take now is kept on disk and applied by housekeeping."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app, hooks
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.conftest import VILLAGE_A1
from tests.kannel_peer import wait_until

TOKEN = "t0ken-for-kannel"
PHONE = "+8613800138000"


@dataclass
class MoHook:
    base: str
    session: aiohttp.ClientSession
    store: Store
    settings: Settings
    inbox: Path

    async def reply(self, text: str, sender: str = "13800138000") -> int:
        query = {"alias": "kannel", "token": TOKEN, "from": sender, "text": text}
        async with self.session.get(f"{self.base}/hooks/kannel/mo", params=query) as response:
            return response.status

    async def opted_out(self, subscriber_id: int) -> bool:
        return "sms" in (await self.store.get_subscriber(subscriber_id)).opt_out_channels

    async def optout_audits(self) -> int:
        audit = await self.store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
        return sum(1 for a in audit if a["action"] == "subscriber.optout")


@pytest.fixture
async def mo_hook(store: Store, settings: Settings, tmp_path: Path) -> AsyncIterator[MoHook]:
    inbox = tmp_path / "inbox"
    app_settings = Settings.model_validate({
        "database": {"url": settings.database.url},
        "engine": {"inbox_dir": str(inbox)},
        "channels": {"kannel": {"kind": "sms", "type": "kannel", "username": "u", "password": "p",
                                "hook_token": TOKEN}},
    })
    server = TestServer(create_app(app_settings, store=store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield MoHook(str(server.make_url("")).rstrip("/"), session, store, app_settings, inbox)
    finally:
        await server.close()


async def resident(store: Store, phone: str = PHONE) -> int:
    subscriber = await store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": phone, "area_code": VILLAGE_A1, "channels": ["sms"]}), "t"
    )
    return subscriber.id


@contextlib.contextmanager
def write_locked(path: str) -> Iterator[None]:
    """Another connection holds the database's write lock (as a migration or a backup tool would)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.sqlite_only("another connection's BEGIN EXCLUSIVE on the SQLite file; PostgreSQL has no such lock")
async def test_td_under_a_locked_database_is_applied_once_the_lock_is_released(
    mo_hook: MoHook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    subscriber_id = await resident(mo_hook.store)
    engine = Engine(mo_hook.store, mo_hook.settings, {"kannel": RecordingChannel("kannel")})
    await engine.start()  # the service runs; its housekeeping keeps trying while the lock is held
    try:
        with write_locked(mo_hook.settings.sqlite_path or ""):
            assert await mo_hook.reply("TD") == 200  # kept: Kannel must not call again
            assert not await mo_hook.opted_out(subscriber_id)  # (readers are not blocked under WAL)
        await wait_until(lambda: mo_hook.opted_out(subscriber_id), "the kept TD to be applied")
    finally:
        await engine.stop()
    assert await mo_hook.optout_audits() == 1
    assert not [p for p in mo_hook.inbox.rglob("*") if p.is_file()]  # applied replies are not kept
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("notifier")]
    assert not any("13800138000" in line for line in lines)


async def test_a_kept_reply_of_an_unknown_number_is_dropped(mo_hook: MoHook, monkeypatch: pytest.MonkeyPatch) -> None:
    subscriber_id = await resident(mo_hook.store)

    async def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(mo_hook.store, "find_subscriber_by_phone", locked)
        assert await mo_hook.reply("退订", sender="13900139999") == 200
        assert await mo_hook.reply("ｔｄ") == 200
    engine = Engine(mo_hook.store, mo_hook.settings, {"kannel": RecordingChannel("kannel")})
    await engine.run_once()
    assert await mo_hook.opted_out(subscriber_id)
    assert await mo_hook.optout_audits() == 1
    assert not [p for p in mo_hook.inbox.rglob("*") if p.is_file()]


async def test_when_nothing_can_keep_the_reply_kannel_is_asked_to_call_again(
    mo_hook: MoHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the database nor the inbox: a 503, which Kannel retries when its smsbox sets http-request-retry."""
    subscriber_id = await resident(mo_hook.store)
    mo_hook.inbox.parent.mkdir(parents=True, exist_ok=True)
    mo_hook.inbox.write_text("not a folder")

    async def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(mo_hook.store, "add_optout", locked)
        assert await mo_hook.reply("TD") == 503
    assert await mo_hook.reply("TD") == 200  # Kannel's next call, once the database is back
    assert await mo_hook.opted_out(subscriber_id)
