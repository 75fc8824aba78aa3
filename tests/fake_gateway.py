"""A fake provider: a real aiohttp server on 127.0.0.1:0 that answers a scripted sequence of replies.

``async with fake_gateway(Reply(429, headers={"Retry-After": "7"}), Reply(200, "ok")) as gw:`` answers the
first request 429, then 200 for every later one (the last reply repeats). ``Reply(hang=True)`` never
answers, for client timeouts; ``Reply(delay=0.2)`` answers after 0.2 s; ``Reply(drop=True)`` sends the
status line, the headers (announcing the whole body) and the body's first half, then closes the socket;
``Reply(split=0.05)`` sends the body's two halves 0.05 s apart, as a slow link delivers it. ``gw.seen``
keeps every request (method, path, query, headers, body); ``gw.most_at_once`` is the most requests it was
answering at once.
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
