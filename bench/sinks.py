"""Local peers for the channel benchmarks, each in its own process on 127.0.0.1 and a free port.

A sink runs in a separate (spawned) process so that its CPU does not share the event loop, or the GIL,
with the client being measured; on this machine's cores the two still compete, which every side of a
comparison suffers alike. ``sink_process(kind)`` starts one and yields a ``Sink``: its port, and
``received()``, the number of requests or messages it has accepted so far (a check that every send
arrived, not a timing); each also counts the distinct recipients since ``mark()`` (``recipients()``: Kannel's
``to``, the SMTP envelope's recipients, WeChat's ``touser``), which tells a message sent twice from one never sent.

    kind      what it is
    --------  ----------------------------------------------------------------------------------------
    kannel    aiohttp app: any method on /cgi-bin/sendsms -> ``202 0: Accepted for delivery``; keeps the
              last query string (``Sink.last_query``)
    smtp      aiosmtpd Controller: accepts every recipient, discards the message after DATA
    wechat    tests/fake_wechat.FakeWechat (the fake used by the tests), following the given openids
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

STARTUP_SECONDS = 30.0


@dataclass
class Sink:
    kind: str
    port: int
    pid: int  # the sink's process (``bench.common.client_and_sink_apart`` gives it a core of its own)
    _conn: Connection
    _lock: threading.Lock

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> int:
        """Requests (or messages) the sink has accepted so far."""
        count: int = self._ask("count")
        return count

    def mark(self) -> None:
        """Start counting the distinct recipients afresh."""
        self._ask("mark")

    def recipients(self) -> int:
        """Distinct recipients the sink accepted messages for since ``mark()``: the ``to`` of each request, as sent
        (``kannel``), the envelope's recipients (``smtp``), the ``touser`` of each accepted body (``wechat``)."""
        count: int = self._ask("recipients")
        return count

    def last_query(self) -> str:
        """The query string (as sent, still encoded) of the last request the ``kannel`` sink accepted; "" before any."""
        query: str = self._ask("last")
        return query

    def _ask(self, question: str) -> Any:
        with self._lock:
            self._conn.send(question)
            if not self._conn.poll(STARTUP_SECONDS):
                raise RuntimeError(f"{self.kind} sink does not answer")
            return self._conn.recv()


@contextlib.contextmanager
def sink_process(kind: str, **options: Any) -> Iterator[Sink]:
    """Start the ``kind`` sink in a spawned process; stop it (by its own pid) on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_main, args=(kind, child, options), name=f"bench-{kind}-sink", daemon=True)
    process.start()
    try:
        if not parent.poll(STARTUP_SECONDS):
            raise RuntimeError(f"the {kind} sink did not start")
        port = parent.recv()
        assert process.pid is not None
        yield Sink(kind, int(port), process.pid, parent, threading.Lock())
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
        parent.close()


def _main(kind: str, conn: Connection, options: dict[str, Any]) -> None:
    if kind == "smtp":
        _serve_smtp(conn)
    else:
        asyncio.run(_serve_http(kind, conn, options))


async def _serve_http(kind: str, conn: Connection, options: dict[str, Any]) -> None:
    from aiohttp import web

    counter = [0]
    last = [""]  # the last query string: the raw client sends the very text the engine sent
    recipients: set[str] = set()  # kannel: the distinct ``to`` since the last "mark"
    marked = [0]  # wechat: the bodies the fake had accepted at the last "mark"
    count: Callable[[], int]
    distinct: Callable[[], int] = lambda: len(recipients)  # noqa: E731
    if kind == "kannel":

        async def sendsms(request: web.Request) -> web.Response:
            await request.read()
            counter[0] += 1
            last[0] = request.rel_url.raw_query_string
            recipients.add(recipient(last[0]))
            return web.Response(status=202, text="0: Accepted for delivery")

        app = web.Application()
        app.router.add_route("*", "/cgi-bin/sendsms", sendsms)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
        port = int(runner.addresses[0][1])
        count = lambda: counter[0]  # noqa: E731
        cleanup = runner.cleanup
    elif kind == "wechat":
        from tests.fake_wechat import FakeWechat

        fake = FakeWechat(followers=set(options.get("followers", ())))
        await fake.__aenter__()
        port = fake.port
        count = lambda: len(fake.received)  # noqa: E731
        distinct = lambda: len({str(body.get("touser")) for body in fake.received[marked[0] :]})  # noqa: E731

        async def cleanup() -> None:
            await fake.__aexit__(None, None, None)

    else:
        raise ValueError(f"unknown sink {kind!r}")
    conn.send(port)
    stop = asyncio.Event()

    def on_message() -> None:
        message = conn.recv()
        if message == "count":
            conn.send(count())
        elif message == "last":
            conn.send(last[0])
        elif message == "mark":
            recipients.clear()
            marked[0] = count()
            conn.send(None)
        elif message == "recipients":
            conn.send(distinct())
        else:
            stop.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), on_message)
    await stop.wait()
    loop.remove_reader(conn.fileno())
    await cleanup()


def recipient(query: str) -> str:
    """The ``to`` of a query string as sent (still encoded: for telling recipients apart), "" without one; found
    by looking, not by parsing the whole query (the message's text is most of it), to keep the sink cheap."""
    if query.startswith("to="):
        start = 3
    else:
        start = query.find("&to=") + 4
        if start < 4:
            return ""
    end = query.find("&", start)
    return query[start:] if end < 0 else query[start:end]


def _serve_smtp(conn: Connection) -> None:
    import socket

    from aiosmtpd.controller import Controller

    class Discard:
        def __init__(self) -> None:
            self.count = 0
            self.recipients: set[str] = set()  # the envelopes' recipients since the last "mark"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.count += 1
            self.recipients.update(envelope.rcpt_tos)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Discard()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(port)
    try:
        while True:
            message = conn.recv()
            if message == "count":
                conn.send(handler.count)
            elif message == "mark":
                handler.recipients.clear()
                conn.send(None)
            elif message == "recipients":
                conn.send(len(handler.recipients))
            else:
                break
    finally:
        controller.stop()
