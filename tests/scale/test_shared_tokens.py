"""Two processes over one database fetch one WeChat (or WeCom) access token between them
(``engine.shared_tokens``), even when both need it at the same moment."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from channels.wechat_token import IssuedToken
from notifier.engine.shared_tokens import DatabaseTokenCache
from notifier.store import Store, open_database
from tests.databases import database_url, open_migrated
from tests.fake_wechat import FakeWechat
from tests.fake_wecom import FakeWecom
from tests.scale.workers import ROOT

PROCESSES = 2


async def send_from_processes(db_url: str, channels: dict[str, Any], recipients: list[str]) -> list[str]:
    """Start one sender per recipient, let them all send at once, and return what each reported."""
    senders = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.scale.token_sender", db_url, json.dumps(channels), recipient,
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for recipient in recipients
    ]
    for sender in senders:
        assert sender.stdout is not None
        assert (await asyncio.wait_for(sender.stdout.readline(), 30)).strip() == b"ready"
    for sender in senders:
        assert sender.stdin is not None
        sender.stdin.write(b"go\n")
        await sender.stdin.drain()
    outputs = [await asyncio.wait_for(sender.communicate(), 30) for sender in senders]
    return [out.decode().strip() for out, _ in outputs]


async def migrated(tmp_path: Path) -> str:
    db_url = database_url(tmp_path, "tokens.db")
    db = await open_migrated(db_url)
    await db.close()
    return db_url


async def test_two_processes_fetch_one_wechat_token(tmp_path: Path) -> None:
    db_url = await migrated(tmp_path)
    followers = [f"oia2TjuEGTNoeX76QEjQNrcURx{n:02d}" for n in range(PROCESSES)]
    async with FakeWechat(followers=set(followers)) as fake:
        channels = {
            "wechat": {
                "kind": "wechat", "type": "wechat_official", "appid": fake.appid, "secret": fake.secret,
                "template_id": fake.template_id, "api_base": fake.url,
            }
        }
        results = await send_from_processes(db_url, channels, followers)
    assert results == ["Sent"] * PROCESSES
    assert len(fake.received) == PROCESSES
    assert len(fake.token_requests) == 1


async def test_two_processes_fetch_one_wecom_token(tmp_path: Path) -> None:
    db_url = await migrated(tmp_path)
    staff = [f"ZhangSan{n}" for n in range(PROCESSES)]
    async with FakeWecom(users=set(staff)) as fake:
        channels = {
            "wecom": {
                "kind": "wecom", "type": "wecom_app", "corpid": fake.corpid, "corpsecret": fake.corpsecret,
                "agentid": fake.agentid, "api_base": fake.url,
            }
        }
        results = await send_from_processes(db_url, channels, staff)
    assert results == ["Sent"] * PROCESSES
    assert fake.send_calls == PROCESSES
    assert fake.token_calls == 1


async def test_a_rejected_token_is_fetched_again_once_for_all(tmp_path: Path) -> None:
    db = await open_database(await migrated(tmp_path))
    store = Store(db)
    fetched: list[bool] = []

    async def fetch(force: bool) -> IssuedToken:
        fetched.append(force)
        return IssuedToken(f"token-{len(fetched)}", 7200)

    first, second = (DatabaseTokenCache(store, "wechat:wx01", holder, fetch) for holder in ("one", "two"))
    try:
        assert [await first.token(), await second.token()] == ["token-1", "token-1"]
        # the platform rejects token-1 on both at once: one new token, fetched by one of them
        assert await asyncio.gather(first.refresh("token-1"), second.refresh("token-1")) == ["token-2", "token-2"]
        assert await first.refresh("token-1") == "token-2"  # already replaced: nothing fetched
    finally:
        await db.close()
    assert fetched == [False, False]
