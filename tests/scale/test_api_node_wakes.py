"""An API node (``notifier serve`` with ``engine.workers = 0``) announces the work made through it: a
``notifier worker`` process polling every 30 s sends an approval's messages and a resident's code at once
(LISTEN / NOTIFY, ``engine.wakeups``, ``api.wake``); so does ``notifier notices approve``. Real processes on
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn
from notifier.store import Store
from tests.databases import postgres_database
from tests.engine.conftest import VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, approved, resident, seeded_store
from tests.scale.workers import ROOT, start_worker, stop_all, timed_sink, write_config

POLL = 30.0  # the worker's poll interval: far longer than the test waits
WAKE_LIMIT = 10.0  # seconds the test waits for the first message after the API node's answer
PEOPLE = 10  # in each village
PHONE = "+8613800138000"  # the resident who subscribes through the API node's page
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def api_node(config: Path, port: int) -> AsyncIterator[str]:
    """``notifier serve`` with this config: its base URL once it answers (its start-up, the announcing
    connection included, is done before it listens)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    process: Process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", "serve", "--config", str(config), "--host", "127.0.0.1",
        "--port", str(port), cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # a process's port has no event to wait on: try it, 60 s at most
                assert process.returncode is None, "the API node exited"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError("the API node did not answer")
        yield base
    finally:
        await stop_all([process])


async def approve_through(base: str, notice_id: int, approver: str) -> float:
    """POST the approval to the API node; the monotonic time of its answer."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {approver}"}) as session:
        async with session.post(f"{base}/api/v1/notices/{notice_id}/approve") as answer:
            assert answer.status == 200, await answer.text()
    return time.monotonic()


async def subscribe_through(base: str) -> float:
    """A resident asks for a code on the API node's subscription page; the time of the page's answer."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{base}/subscribe?area={VILLAGE_A1}&topic=air-quality") as answer:
            page = await answer.text()
            assert answer.status == 200, page
        form = {"form_token": FORM_TOKEN.search(page)[1], "area": VILLAGE_A1, "name": "李明",  # type: ignore[index]
                "phone": PHONE, "topics": "air-quality", "consent": "yes"}  # fmt: skip
        async with session.post(f"{base}/subscribe", data=form) as answer:
            assert answer.status == 200, await answer.text()
    return time.monotonic()


async def pending(store: Store, village: str) -> int:
    """A notice to the village's residents, waiting for approval."""
    notice, _ = await store.create_notice(
        NoticeIn.model_validate({"topic": "air-quality", "title": "预警", "body": "明日重度污染。",
                                 "target": {"areas": [village]}, "channels": ["sms"]}),
        department="environment", created_by=None, actor="test",
    )  # fmt: skip
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor="test")
    return notice.id


async def approve_by_command(config: Path, notice_id: int, approver: str) -> float:
    """``notifier notices approve``; the monotonic time it exited."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", "notices", "approve", str(notice_id), "--api-key", approver,
        "--config", str(config), cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0 and b"approved" in out, err
    return time.monotonic()


@pytest.mark.peer("postgres")
async def test_a_worker_elsewhere_sends_at_once_what_an_api_node_approved_or_queued(tmp_path: Path) -> None:
    db_url = postgres_database()
    async with seeded_store(db_url) as store, timed_sink() as sink:
        for village in (VILLAGE_A1, VILLAGE_B1, VILLAGE_A2):
            for _ in range(PEOPLE):
                await resident(store, village)
        await approved(store, target={"areas": [VILLAGE_A1]})
        by_api, by_command = await pending(store, VILLAGE_B1), await pending(store, VILLAGE_A2)
        _, approver = await store.create_api_key(department="environment", role=Role.APPROVER, name="t", actor="t")
        api_config = write_config(tmp_path / "api.toml", db_url, sink, engine={"workers": 0}, channel={})
        worker_config = write_config(
            tmp_path / "worker.toml", db_url, sink, engine={"workers": 1, "poll_interval": POLL}, channel={}
        )
        async with api_node(api_config, free_port()) as base:
            worker = await start_worker(worker_config)
            try:
                # its first pass fans the first notice out and sends it; then it has nothing to do for POLL seconds
                await asyncio.wait_for(sink.served(PEOPLE), 60)
                approved_at = await approve_through(base, by_api, approver)
                await asyncio.wait_for(sink.served(PEOPLE + 1), WAKE_LIMIT)
                approval_wake = time.monotonic() - approved_at
                await asyncio.wait_for(sink.served(2 * PEOPLE), 60)
                asked_at = await subscribe_through(base)
                await asyncio.wait_for(sink.served(2 * PEOPLE + 1), WAKE_LIMIT)
                code_wake = time.monotonic() - asked_at
                approved_at = await approve_by_command(api_config, by_command, approver)
                await asyncio.wait_for(sink.served(2 * PEOPLE + 2), WAKE_LIMIT)
                command_wake = time.monotonic() - approved_at
                await asyncio.wait_for(sink.served(3 * PEOPLE + 1), 60)
            finally:
                await stop_all([worker])
    print(f"\nthe idle worker's first message {approval_wake:.2f} s after the API node approved;"
          f" the resident's code {code_wake:.2f} s after the API node queued it;"
          f" the first message {command_wake:.2f} s after `notifier notices approve` exited")
    assert sink.recipients[PHONE] == 1
