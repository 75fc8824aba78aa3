"""Several ``notifier worker`` processes over one database, sending to a timed sink on 127.0.0.1.

``TimedSink`` is a Kannel ``/cgi-bin/sendsms`` endpoint (answers ``202 0: Accepted for delivery``, as smsbox
does) that keeps the monotonic time each message arrived and the recipient it was for, and sets
``reached`` once it has seen ``until`` recipients or a message ``window`` seconds after the first;
``await sink.served(n)`` returns once ``n`` recipients have been reached. The
workers are real ``python -m notifier worker`` processes started with a config file written here; a test
stops them by their own pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from asyncio.subprocess import Process
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.population import populate
from bench.workers import populate_postgres
from tests.databases import database_url, postgres_database
from tests.engine.conftest import seeded_store

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "scale-test-signing-secret-0123456789abcdef"


@dataclass
class TimedSink:
    window: float | None = None
    until: int | None = None
    times: list[float] = field(default_factory=list)
    recipients: Counter[str] = field(default_factory=Counter)
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _waiting: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/sendsms"

    async def sendsms(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.times.append(now)
        self.recipients[request.query.get("to", "")] += 1
        if self.window is not None and now - self.times[0] >= self.window:
            self.reached.set()
        if self.until is not None and len(self.recipients) >= self.until:
            self.reached.set()
        for count, event in self._waiting:
            if len(self.recipients) >= count:
                event.set()
        return web.Response(status=202, text="0: Accepted for delivery")

    async def served(self, count: int) -> None:
        """Return once ``count`` different recipients have been reached."""
        event = asyncio.Event()
        self._waiting.append((count, event))
        if len(self.recipients) >= count:
            event.set()
        try:
            await event.wait()
        finally:
            self._waiting.remove((count, event))

    @property
    def duplicates(self) -> int:
        """Messages beyond the first to the same recipient."""
        return sum(self.recipients.values()) - len(self.recipients)

    def count_within(self, seconds: float) -> int:
        """Messages received in the first ``seconds`` after the first one."""
        start = self.times[0]
        return sum(1 for t in self.times if t - start < seconds)


@contextlib.asynccontextmanager
async def timed_sink(**options: Any) -> AsyncIterator[TimedSink]:
    sink = TimedSink(**options)
    app = web.Application()
    app.router.add_route("*", "/cgi-bin/sendsms", sink.sendsms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        await runner.cleanup()


def write_config(path: Path, db_url: str, sink: TimedSink, *, engine: dict[str, Any], channel: dict[str, Any]) -> Path:
    lines = [
        "[database]",
        f'url = "{db_url}"',
        "[security]",
        f'signing_secret = "{SIGNING_SECRET}"',
        "[engine]",
        *(f"{key} = {value!r}" for key, value in engine.items()),
        "[channels.sms]",
        'kind = "sms"',
        'type = "kannel"',
        f'url = "{sink.url}"',
        'username = "notifier"',
        'password = "scale-test"',
        *(f"{key} = {value!r}" for key, value in channel.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def populated_database(tmp_path: Path, residents: int, *, postgres: bool = False) -> str:
    """The URL of this test's database (SQLite, or PostgreSQL: tests/databases.py; with ``postgres`` always
    PostgreSQL), seeded with the test county and ``residents`` synthetic residents following air-quality (the
    residents of bench.population)."""
    url = postgres_database() if postgres else database_url(tmp_path, "scale.db")
    async with seeded_store(url):
        if url.startswith("sqlite:///"):
            await asyncio.to_thread(populate, url.removeprefix("sqlite:///"), residents)
        else:
            await populate_postgres(url, residents)
    return url


async def until(condition: Callable[[], Awaitable[bool]], every: float = 0.05) -> None:
    """Return once ``condition`` holds: what other processes write to the database has no event to wait on."""
    while True:
        if await condition():
            return
        await asyncio.sleep(every)


async def start_worker(config: Path, *, log: bool = False) -> Process:
    """``notifier worker`` with this config; with ``log`` its log (stderr) is a pipe the test reads."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", "worker", "--config", str(config),
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE if log else None,
    )


async def stop_all(processes: list[Process], sig: int = signal.SIGTERM) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
