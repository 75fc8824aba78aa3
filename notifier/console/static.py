"""The console's own style sheets and scripts (``notifier/console/static``), served by the service itself:
county networks are often cut off from the internet, and the Content-Security-Policy allows no other origin."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from notifier.console.security import HEADERS

STATIC = Path(__file__).parent / "static"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,80}\.(css|js|svg|png)")
_TYPES = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml", "png": "image/png"}


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    match = _NAME.fullmatch(name)
    path = STATIC / name
    if match is None or ".." in name or not path.is_file():
        raise web.HTTPNotFound(text="no such file")
    body = path.read_bytes()
    headers = {**HEADERS, "Cache-Control": "public, max-age=3600"}
    charset = "utf-8" if match.group(1) in ("css", "js", "svg") else None
    return web.Response(body=body, content_type=_TYPES[match.group(1)], charset=charset, headers=headers)


ROUTES = [("GET", "/console/static/{name}", static_file)]
