"""The page a link in a message opens (confirm a delivery, leave a channel): one self-contained HTML page,
never cached or indexed, and kept out of referrers, since the link's token is in its URL."""

from __future__ import annotations

import html

from aiohttp import web

LINK_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style></head>
<body>{body}</body></html>
"""


def link_page(title: str, body: str, style: str) -> web.Response:
    """The page titled ``title`` (escaped here) around ``body`` (HTML, escaped by the caller), styled by ``style``."""
    page = _PAGE.format(title=html.escape(title), style=style, body=body)
    return web.Response(text=page, content_type="text/html", headers=LINK_PAGE_HEADERS)
