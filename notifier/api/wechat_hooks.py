"""The WeChat Official Account server URL: URL verification and TEMPLATESENDJOBFINISH receipts.

In the account's "server configuration" the county sets this URL (``https://<host>/hooks/wechat``,
optionally ``?alias=<alias>``) and a Token; the same Token goes into the channel alias's
``callback_token`` option. WeChat signs every request with query parameters ``signature``,
``timestamp`` and ``nonce``: ``signature = sha1("".join(sorted([token, timestamp, nonce])))``
(https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html).

    GET  /hooks/wechat?signature&timestamp&nonce&echostr
        URL verification: a valid signature -> 200 with ``echostr`` as the body; else 403 problem.
    POST /hooks/wechat?signature&timestamp&nonce        (XML body, plaintext or compatible mode)
        Bad signature -> 403 problem; unreadable XML -> 400 problem. The TEMPLATESENDJOBFINISH event
        (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html)
        is matched by ``MsgID`` (= the msgid the send returned) through ``record_receipt``:
            Status "success"               -> delivered
            "failed:user block"            -> failed (the resident refuses messages from the account)
            "failed: system failed", any other "failed..." -> failed, with the text as detail
            anything else                  -> stored as given, no state change
        Every other message or event (follows, texts...) is ignored. The answer is 200 "success" (also for
        an unknown MsgID, which is logged), or 503 when the receipt could not be stored, so WeChat re-sends.

Without ``alias``, the request is matched to the ``wechat`` aliases that have a ``callback_token`` by
its signature. Safe mode (only an ``<Encrypt>`` element) is not supported: answered 400.
Openids (``FromUserName``) are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import xml.etree.ElementTree as ElementTree

from aiohttp import web
from pydantic import SecretStr

from notifier.api.hooks import apply_receipt
from notifier.api.keys import SETTINGS
from notifier.api.problems import problem
from notifier.api.routing import Route

log = logging.getLogger("notifier.hooks.wechat")

MAX_XML_BYTES = 64 * 1024
EVENT = "TEMPLATESENDJOBFINISH"


def wechat_signature(token: str, timestamp: str, nonce: str) -> str:
    """The signature WeChat puts on requests to the server URL."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode("utf-8")).hexdigest()


def receipt_status(status: str) -> tuple[str, str | None]:
    """Our receipt status and detail for a TEMPLATESENDJOBFINISH ``Status``."""
    text = status.strip()
    if text == "success":
        return "delivered", None
    if text.startswith("failed"):
        return "failed", text.removeprefix("failed").lstrip(":").strip() or None
    return text[:40] or "unknown", None


def parse_event(body: bytes) -> dict[str, str]:
    """The child elements of a plaintext ``<xml>`` message; ValueError when it is not one."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("document type declarations are not accepted")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.tag != "xml":
        raise ValueError("the root element must be <xml>")
    fields = {child.tag: (child.text or "").strip() for child in root}
    if "Encrypt" in fields and "MsgType" not in fields:
        raise ValueError("encrypted (safe mode) messages are not supported; use plaintext or compatible mode")
    return fields


def _tokens(request: web.Request) -> list[tuple[str, str]]:
    """(alias, callback token) of the aliases this request may be for."""
    wanted = request.query.get("alias")
    found = []
    for alias, config in request.app[SETTINGS].channels.items():
        if wanted is not None and alias != wanted:
            continue
        token = config.options.get("callback_token")
        if isinstance(token, SecretStr):
            token = token.get_secret_value()
        if config.kind.value == "wechat" and isinstance(token, str) and token:
            found.append((alias, token))
    return found


def _authorised(request: web.Request) -> str | None:
    """The alias whose callback token produced the request's signature, else None."""
    query = request.query
    presented = query.get("signature", "")
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if not (presented and timestamp and nonce):
        return None
    for alias, token in _tokens(request):
        if hmac.compare_digest(wechat_signature(token, timestamp, nonce), presented.lower()):
            return alias
    return None


def _forbidden(request: web.Request) -> web.Response:
    log.warning("wechat hook %s %s refused: bad or missing signature", request.method, request.path)
    return problem(403, "Forbidden", "the signature does not match", slug="forbidden", instance=request.path)


async def wechat_verify(request: web.Request) -> web.StreamResponse:
    """WeChat's server URL check: echo ``echostr`` when the signature matches."""
    alias = _authorised(request)
    if alias is None:
        return _forbidden(request)
    log.info("wechat server URL verified for %s", alias)
    return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")


async def wechat_event(request: web.Request) -> web.StreamResponse:
    """A message or event pushed by WeChat; TEMPLATESENDJOBFINISH becomes a delivery receipt."""
    alias = _authorised(request)
    if alias is None:
        return _forbidden(request)
    body = await request.content.read(MAX_XML_BYTES + 1)
    try:
        if len(body) > MAX_XML_BYTES:
            raise ValueError("the message is too large")
        event = parse_event(body)
    except ValueError as exc:
        log.warning("wechat hook on %s: unreadable message: %s", alias, exc)
        return problem(400, "Bad request", str(exc), slug="bad-request", instance=request.path)
    if event.get("MsgType") != "event" or event.get("Event") != EVENT:
        log.debug("wechat hook on %s: %s/%s ignored", alias, event.get("MsgType"), event.get("Event"))
        return web.Response(text="success", content_type="text/plain")
    msgid = event.get("MsgID", "")
    if not msgid or len(msgid) > 64:
        return problem(400, "Bad request", "MsgID is missing or too long", slug="bad-request", instance=request.path)
    status, detail = receipt_status(event.get("Status", ""))
    try:
        outcome = await apply_receipt(request, alias, msgid, status, detail)
    except Exception:
        log.exception("wechat receipt %s on %s could not be recorded", msgid, alias)
        return problem(503, "Unavailable", "the receipt could not be stored", slug="unavailable", instance=request.path)
    log.info("wechat receipt %s on %s: %s -> %s", msgid, alias, status, outcome)
    return web.Response(text="success", content_type="text/plain")


ROUTES: list[Route] = [
    Route(
        "GET",
        "/hooks/wechat",
        wechat_verify,
        "WeChat server URL verification (echoes echostr)",
        "hooks",
        public=True,
        extra_responses={403: "bad or missing signature"},
    ),
    Route(
        "POST",
        "/hooks/wechat",
        wechat_event,
        "WeChat pushed events: TEMPLATESENDJOBFINISH delivery receipts",
        "hooks",
        public=True,
        extra_responses={400: "not a readable WeChat XML message", 403: "bad or missing signature"},
    ),
]

__all__ = ["ROUTES", "parse_event", "receipt_status", "wechat_event", "wechat_signature", "wechat_verify"]
