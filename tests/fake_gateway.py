"""A fake provider: a real aiohttp server on 127.0.0.1:0 that answers a scripted sequence of replies.

``async with fake_gateway(Reply(429, headers={"Retry-After": "7"}), Reply(200, "ok")) as gw:`` answers the
first request 429, then 200 for every later one (the last reply repeats). ``Reply(hang=True)`` never
answers, for client timeouts; ``Reply(delay=0.2)`` answers after 0.2 s. ``gw.seen`` keeps every request
(method, path, query, headers, body); ``gw.most_at_once`` is the most requests it was answering at once.
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
        if isinstance(reply.body, dict):
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)


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
