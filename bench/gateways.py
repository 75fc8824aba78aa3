"""Gateways on a bad day, for ``bench.reach``: SMS, WeChat and e-mail, each in its own process on 127.0.0.1.

Each one speaks its vendor's protocol as the adapters expect it, but slowly and not always, and it keeps
the simulation's ground truth: when each message reached its resident's phone, WeChat or mailbox.

    kind    protocol                                               temporary failure        receipt
    ------  -----------------------------------------------------  -----------------------  ---------------------
    kannel  Kannel smsbox: GET /cgi-bin/sendsms -> 202             503 "Temporal failure"   GET the dlr-url the
            "0: Accepted for delivery"                                                      message carried
                                                                                            (%d = 1 or 2)
    wechat  POST /cgi-bin/stable_token; POST /cgi-bin/message/     errcode -1 "system       POST TEMPLATESENDJOB-
            template/send -> errcode 0 + msgid                     error"                   FINISH XML to our
                                                                                            /hooks/wechat, signed
    smtp    aiosmtpd; the DATA reply is the outcome                451 4.3.0 at DATA        none (e-mail has none)

Every request waits a latency first. Then ``BadDay.failure_rate`` of requests get the temporary failure;
of the accepted messages, ``undeliverable_rate`` never arrive (SMS and WeChat report them failed in their
receipt), and of those that arrive, ``lost_receipt_rate`` never get a receipt. The others' receipts come a
little after the message arrives. All delays are drawn in simulated seconds (see ``SimClock``) and waited
in real seconds, divided by ``factor``. The SMS centre's throughput is not limited here: a contract that
caps it (``rate_per_second``) adds N / rate seconds for N messages. Delays (simulated seconds):

    request latency     SMS 0.005 + exp(mean 0.01) (smsbox on the county's network answers once it has queued
                        the message); WeChat 0.03 + exp(mean 0.03) (api.weixin.qq.com over the internet);
                        SMTP DATA 0.01 + exp(mean 0.02) (the county's relay)
    to the resident     SMS: 90 % 2 + exp(mean 5), 9 % 20-120, 1 % 2-15 minutes (a congested network);
                        WeChat 0.5 + exp(mean 2); e-mail 2 + exp(mean 10)
    receipt after that  SMS 1 + exp(mean 2) (undelivered: 30-120 s after the send); WeChat 0.5 + exp(mean 1)

``report()`` returns the arrivals (address -> simulated time of the first arrival) and counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import multiprocessing
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

STARTUP_SECONDS = 30.0
CALLBACKS_IN_FLIGHT = 16


@dataclass(frozen=True)
class SimClock:
    """Simulated time: ``factor`` simulated seconds pass per real second, counted from ``origin`` (epoch)."""

    origin: float
    factor: float

    def now(self) -> float:
        return self.at(time.time())

    def at(self, epoch: float) -> float:
        """The simulated time of a real moment (epoch seconds)."""
        return self.origin + (epoch - self.origin) * self.factor

    def real(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.factor


@dataclass(frozen=True)
class BadDay:
    clock: SimClock
    failure_rate: float = 0.05
    undeliverable_rate: float = 0.02
    lost_receipt_rate: float = 0.03
    seed: int = 8


@dataclass
class Record:
    """What a gateway saw: first arrival per address (simulated epoch seconds) and counters."""

    arrivals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def arrive(self, address: str, at: float) -> None:
        if at < self.arrivals.get(address, float("inf")):
            self.arrivals[address] = at


def exp(rng: random.Random, base: float, mean: float) -> float:
    return base + rng.expovariate(1 / mean)


def to_resident(kind: str, rng: random.Random) -> float:
    """Simulated seconds from the gateway's acceptance to the resident's phone, WeChat or mailbox."""
    if kind == "kannel":
        draw = rng.random()
        if draw < 0.90:
            return exp(rng, 2, 5)
        return rng.uniform(20, 120) if draw < 0.99 else rng.uniform(120, 900)
    return exp(rng, 0.5, 2) if kind == "wechat" else exp(rng, 2, 10)


LATENCY = {"kannel": (0.005, 0.01), "wechat": (0.03, 0.03), "smtp": (0.01, 0.02)}


@dataclass
class Fate:
    """The gateway's decision on one accepted message: arrival (None: never) and receipt delay (None: none)."""

    arrives_after: float | None
    receipt_after: float | None

    @classmethod
    def draw(cls, kind: str, day: BadDay, rng: random.Random) -> Fate:
        if rng.random() < day.undeliverable_rate:
            return cls(None, rng.uniform(30, 120) if kind == "kannel" else exp(rng, 1, 2))
        arrives = to_resident(kind, rng)
        if kind == "smtp" or rng.random() < day.lost_receipt_rate:
            return cls(arrives, None)
        return cls(arrives, arrives + (exp(rng, 1, 2) if kind == "kannel" else exp(rng, 0.5, 1)))


@dataclass
class Gateway:
    kind: str
    port: int
    _conn: Connection
    _lock: threading.Lock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def report(self) -> Record:
        with self._lock:
            self._conn.send("report")
            if not self._conn.poll(STARTUP_SECONDS):
                raise RuntimeError(f"the {self.kind} gateway does not answer")
            record: Record = self._conn.recv()
            return record


@contextlib.contextmanager
def gateway_process(kind: str, day: BadDay, **options: Any) -> Iterator[Gateway]:
    """Start the ``kind`` gateway in a spawned process; stop it (by its own pid) on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_main, args=(kind, day, child, options), name=f"bench-{kind}-gateway", daemon=True)
    process.start()
    try:
        if not parent.poll(STARTUP_SECONDS):
            raise RuntimeError(f"the {kind} gateway did not start")
        yield Gateway(kind, int(parent.recv()), parent, threading.Lock())
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
        parent.close()


def _main(kind: str, day: BadDay, conn: Connection, options: dict[str, Any]) -> None:
    if kind == "smtp":
        _serve_smtp(day, conn)
    else:
        asyncio.run(_serve_http(kind, day, conn, options))


class Callbacks:
    """Receipts to our hooks, each posted at its time; in-flight posts bounded."""

    def __init__(self, record: Record) -> None:
        import aiohttp

        self.record = record
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CALLBACKS_IN_FLIGHT))
        self.tasks: set[asyncio.Task[None]] = set()
        self.timers: set[asyncio.TimerHandle] = set()

    def later(
        self, seconds: float, method: str, url: str, sign: Callable[[], dict[str, str]] | None = None, **kwargs: Any
    ) -> None:
        """Post at ``seconds`` from now; ``sign`` gives the query parameters at that moment (a signed timestamp)."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self.timers.discard(timer)
            params = sign() if sign is not None else None
            task = asyncio.create_task(self.call(method, url, params=params, **kwargs))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        timer = loop.call_later(seconds, fire)
        self.timers.add(timer)

    async def call(self, method: str, url: str, **kwargs: Any) -> None:
        import aiohttp

        try:
            async with self.session.request(method, url, **kwargs) as response:
                await response.read()
                self.record.count("receipts_answered_2xx" if response.status < 300 else f"receipts_{response.status}")
        except (aiohttp.ClientError, TimeoutError):
            self.record.count("receipts_unanswered")

    async def close(self) -> None:
        for timer in self.timers:
            timer.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()


async def _serve_http(kind: str, day: BadDay, conn: Connection, options: dict[str, Any]) -> None:
    from aiohttp import web

    rng = random.Random(f"{day.seed}-{kind}")
    record = Record()
    callbacks = Callbacks(record)
    app = web.Application()
    if kind == "kannel":
        app.router.add_get("/cgi-bin/sendsms", _kannel_handler(day, rng, record, callbacks))
    elif kind == "wechat":
        token = secrets.token_urlsafe(24)
        app.router.add_post("/cgi-bin/stable_token", _token_handler(token))
        app.router.add_post("/cgi-bin/message/template/send", _wechat_handler(day, rng, record, callbacks, options))
    else:
        raise ValueError(f"unknown gateway {kind!r}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    conn.send(int(runner.addresses[0][1]))
    stop = asyncio.Event()

    def on_message() -> None:
        if conn.recv() == "report":
            conn.send(record)
        else:
            stop.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), on_message)
    await stop.wait()
    loop.remove_reader(conn.fileno())
    await callbacks.close()
    await runner.cleanup()


async def _wait(kind: str, day: BadDay, rng: random.Random) -> bool:
    """Wait the request's latency; True when the request is to fail temporarily."""
    base, mean = LATENCY[kind]
    await asyncio.sleep(day.clock.real(exp(rng, base, mean)))
    return rng.random() < day.failure_rate


def _accept(kind: str, day: BadDay, rng: random.Random, record: Record, address: str) -> Fate:
    fate = Fate.draw(kind, day, rng)
    now = day.clock.now()
    record.count("accepted")
    if fate.arrives_after is None:
        record.count("undeliverable")
    else:
        record.arrive(address, now + fate.arrives_after)
    if fate.receipt_after is None and kind != "smtp":
        record.count("receipts_lost" if fate.arrives_after is not None else "receipts_lost_undeliverable")
    return fate


def _kannel_handler(day: BadDay, rng: random.Random, record: Record, callbacks: Callbacks) -> Any:
    from aiohttp import web

    async def sendsms(request: web.Request) -> web.Response:
        record.count("requests")
        if await _wait("kannel", day, rng):
            record.count("temporary_failures")
            return web.Response(status=503, text="Temporal failure, try again later.")
        fate = _accept("kannel", day, rng, record, request.query.get("to", ""))
        dlr_url = request.query.get("dlr-url")
        if dlr_url and fate.receipt_after is not None:
            dlr_type = "1" if fate.arrives_after is not None else "2"
            callbacks.later(day.clock.real(fate.receipt_after), "GET", dlr_url.replace("%d", dlr_type))
        return web.Response(status=202, text="0: Accepted for delivery")

    return sendsms


def _token_handler(token: str) -> Any:
    from aiohttp import web

    async def stable_token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"access_token": token, "expires_in": 7200})

    return stable_token


def _wechat_handler(
    day: BadDay, rng: random.Random, record: Record, callbacks: Callbacks, options: dict[str, Any]
) -> Any:
    from aiohttp import web

    msgids = itertools.count(3_000_000_001)
    hook_url, hook_token = options["hook_url"], options["hook_token"]

    async def template_send(request: web.Request) -> web.Response:
        record.count("requests")
        body = await request.json()
        if await _wait("wechat", day, rng):
            record.count("temporary_failures")
            return web.json_response({"errcode": -1, "errmsg": "system error"})
        openid = str(body.get("touser", ""))
        fate = _accept("wechat", day, rng, record, openid)
        msgid = next(msgids)
        if fate.receipt_after is not None:
            status = "success" if fate.arrives_after is not None else "failed:user block"
            xml = _job_finished(openid, msgid, status)
            sign = functools.partial(_signed, hook_token)
            callbacks.later(day.clock.real(fate.receipt_after), "POST", hook_url, sign=sign, data=xml)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    return template_send


def _job_finished(openid: str, msgid: int, status: str) -> bytes:
    """The TEMPLATESENDJOBFINISH event WeChat pushes to the account's server URL (plaintext mode)."""
    return (
        f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    ).encode()


def _signed(token: str) -> dict[str, str]:
    """signature, timestamp and nonce as WeChat signs a push: sha1 of the three sorted and joined."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def _serve_smtp(day: BadDay, conn: Connection) -> None:
    import socket

    from aiosmtpd.controller import Controller

    rng = random.Random(f"{day.seed}-smtp")
    record = Record()

    class Mailboxes:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            record.count("requests")
            if await _wait("smtp", day, rng):
                record.count("temporary_failures")
                return "451 4.3.0 Mail server temporarily rejected message"
            for address in envelope.rcpt_tos:
                _accept("smtp", day, rng, record, address)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Mailboxes(), hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(port)
    try:
        while conn.recv() == "report":
            conn.send(record)
    finally:
        controller.stop()
