"""Reading a request body whole: one read of the stream returns what has arrived so far, not the body."""

from __future__ import annotations

from aiohttp import web


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body (it may arrive in several chunks), or None when it is longer than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)
