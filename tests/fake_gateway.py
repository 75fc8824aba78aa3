"""A fake provider: a real aiohttp server on 127.0.0.1:0 that answers a scripted sequence of replies.

``async with fake_gateway(Reply(429, headers={"Retry-After": "7"}), Reply(200, "ok")) as gw:`` answers the
first request 429, then 200 for every later one (the last reply repeats). ``Reply(hang=True)`` never
answers, for client timeouts; ``Reply(delay=0.2)`` answers after 0.2 s; ``Reply(drop=True)`` sends the
status line, the headers (announcing the whole body) and the body's first half, then closes the socket;
``Reply(split=0.05)`` sends the body's two halves 0.05 s apart, as a slow link delivers it. ``gw.seen``
keeps every request (method, path, query, headers, body); ``gw.most_at_once`` is the most requests it was
answering at once.

``async with dropping_peer() as peer:`` is another server, on asyncio streams, for a kept-alive connection
that drops: it answers the first request of each connection (202, keep-alive) and closes the connection
without answering the second request it reads there; ``peer.requests`` counts every request it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import MultiDict


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str | dict[str, Any] = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    delay: float = 0.0
    drop: bool = False
    split: float = 0.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: MultiDict[str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeGateway:
    replies: list[Reply]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    at_once: int = 0
    most_at_once: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(request.method, request.path, MultiDict(request.query), dict(request.headers), await request.read())
        )
        reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        if reply.hang:
            await asyncio.Event().wait()  # cancelled when the client goes away or the server closes
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(reply.delay)
        finally:
            self.at_once -= 1
        if reply.drop or reply.split:
            return await in_halves(request, reply)
        if isinstance(reply.body, dict):
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)


async def in_halves(request: web.Request, reply: Reply) -> web.StreamResponse:
    """The body in two writes: ``split`` seconds apart, or the connection closed after the first (``drop``)."""
    body = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode() or b"0: Accepted"
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    response.content_length = len(body)
    if isinstance(reply.body, dict):
        response.content_type = "application/json"
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if reply.drop:
        assert request.transport is not None
        request.transport.close()
        return response
    await asyncio.sleep(reply.split)
    await response.write(body[len(body) // 2 :])
    return response


@contextlib.asynccontextmanager
async def fake_gateway(*replies: Reply) -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(list(replies) or [Reply()])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    gateway.url = str(server.make_url("")).rstrip("/")
    try:
        yield gateway
    finally:
        await server.close()


DROPPING_PEER_REPLY = b"0: Accepted for delivery"


@dataclass
class DroppingPeer:
    """Counts the requests it reads; answers the first of a connection, drops the connection on the second."""

    url: str = ""
    requests: list[str] = field(default_factory=list)  # "METHOD target" of every request read
    connections: int = 0
    handlers: list[asyncio.Task[Any]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            for turn in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                method, target, _ = request_line.split(" ", 2)
                self.requests.append(f"{method} {target}")
                if turn == 1:
                    break  # the request was read in full: close without answering
                body = b"" if method == "HEAD" else DROPPING_PEER_REPLY
                writer.write(
                    b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(DROPPING_PEER_REPLY), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def dropping_peer() -> AsyncIterator[DroppingPeer]:
    peer = DroppingPeer()
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer.url = f"http://127.0.0.1:{port}"
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()
        # every connection ends once the client has closed its session (each test closes it before this)
        await asyncio.wait_for(asyncio.gather(*peer.handlers), 5)
