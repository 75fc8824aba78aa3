"""The WeChat Official Account server URL: URL verification and TEMPLATESENDJOBFINISH receipts.

In the account's "server configuration" the county sets this URL (``https://<host>/hooks/wechat``,
optionally ``?alias=<alias>``) and a Token; the same Token goes into the channel alias's
``callback_token`` option. WeChat signs every request with query parameters ``signature``,
``timestamp`` and ``nonce``: ``signature = sha1("".join(sorted([token, timestamp, nonce])))``
(https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html).

The signature covers neither the body nor the time it is used, so a seen URL would otherwise carry any
body, forever. Two checks close that: the timestamp must be within ``callback_max_age`` seconds of
now (default 300, either way, for clock skew), and a POST's timestamp and nonce are spent when the
message is taken (``hook_nonces``, shared by every process, kept until the timestamp is too old anyway).
A replay is refused (403) and nothing in it is applied. The nonce is spent in the transaction that
stores the receipt, so a push answered 503 can come again. Bodies are parsed with defusedxml: a
document type declaration or an entity, in any encoding (UTF-16 included), makes the body unreadable.

    GET  /hooks/wechat?signature&timestamp&nonce&echostr
        URL verification: a valid, fresh signature -> 200 with ``echostr`` as the body; else 403 problem.
    POST /hooks/wechat?signature&timestamp&nonce        (XML body, plaintext or compatible mode)
        Bad or stale signature, or a replay -> 403 problem; unreadable XML -> 400 problem.
        The TEMPLATESENDJOBFINISH event
        (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html)
        is matched by ``MsgID`` (= the msgid the send returned) through ``record_receipt``:
            Status "success"               -> delivered
            "failed:user block"            -> failed (the resident refuses messages from the account)
            "failed: system failed", any other "failed..." -> failed, with the text as detail
            anything else                  -> stored as given, no state change
        A text message (MsgType text) from a follower becomes a feedback item on the latest notice sent to
        that openid's resident by WeChat (``engine.feedback``), in the transaction that spends the nonce.
        WeChat pushes a message again, under a new signature, when it had no answer within five seconds,
        and says to recognise the repeat by ``MsgId``: a MsgId seen in the last day is answered "success"
        and not taken again.
        Every other message or event (follows, images...) is ignored. The answer is 200 "success" (also for
        an unknown MsgID, which is logged), or 503 when the receipt could not be stored, so WeChat re-sends.

Without ``alias``, the request is matched to the ``wechat`` aliases that have a ``callback_token`` by
its signature. Aliases of one official account (template messages and subscribe notifications) share its one
server URL and token: a receipt is then applied to the send it names on any of them. Safe mode (only an
``<Encrypt>`` element) is not supported: answered 400.
Openids (``FromUserName``) are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import SecretStr

from notifier.api.bodies import read_body
from notifier.api.hooks import apply_receipt
from notifier.api.keys import SETTINGS, STORE
from notifier.api.problems import problem
from notifier.api.routing import Answer, Param, Route
from notifier.api.sms_replies import REPEAT_WINDOW
from notifier.domain.text import ascii_digits
from notifier.engine.feedback import feedback_from_reply
from notifier.store import Store

log = logging.getLogger("notifier.hooks.wechat")

MAX_XML_BYTES = 64 * 1024
MAX_NONCE_CHARS = 64
DEFAULT_MAX_AGE = 300  # seconds; the alias's callback_max_age
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
    """The child elements of a plaintext ``<xml>`` message; ValueError when it is not one (including any
    document type declaration or entity, whatever the encoding)."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ValueError("document type declarations and entities are not accepted") from None
    except ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    except LookupError as exc:  # the XML declaration names an encoding Python does not know
        raise ValueError(f"unreadable XML: {exc}") from None
    if root.tag != "xml":
        raise ValueError("the root element must be <xml>")
    fields = {child.tag: (child.text or "").strip() for child in root}
    if "Encrypt" in fields and "MsgType" not in fields:
        raise ValueError("encrypted (safe mode) messages are not supported; use plaintext or compatible mode")
    return fields


@dataclass(frozen=True)
class Signed:
    """A request whose signature matched an alias's callback token, with the values that were signed."""

    alias: str
    timestamp: int
    nonce: str
    max_age: int
    sharing: tuple[str, ...] = ()  # the other aliases with this token, when the request named none (one account)


def _tokens(request: web.Request) -> list[tuple[str, str, int]]:
    """(alias, callback token, accepted age in seconds) of the aliases this request may be for."""
    wanted = request.query.get("alias")
    found = []
    for alias, config in request.app[SETTINGS].channels.items():
        if wanted is not None and alias != wanted:
            continue
        token = config.options.get("callback_token")
        if isinstance(token, SecretStr):
            token = token.get_secret_value()
        max_age = config.options.get("callback_max_age", DEFAULT_MAX_AGE)
        if isinstance(max_age, bool) or not isinstance(max_age, int | float):
            continue  # the adapter's options model refuses such a value when the service starts
        if config.kind.value == "wechat" and isinstance(token, str) and token:
            found.append((alias, token, int(max_age)))
    return found


def _timestamp(text: str) -> int | None:
    return int(text) if ascii_digits(text) and len(text) <= 11 else None


def _authorised(request: web.Request) -> Signed | None:
    """The request's alias and signed values when one alias's token produced its signature, else None."""
    query = request.query
    presented = query.get("signature", "")
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if not (presented and timestamp and nonce) or len(nonce) > MAX_NONCE_CHARS:
        return None
    candidates = _tokens(request)
    for alias, token, max_age in candidates:
        # compared as bytes: compare_digest raises on a str that is not ASCII, and anyone can send one
        if hmac.compare_digest(wechat_signature(token, timestamp, nonce).encode(), presented.lower().encode()):
            signed_at = _timestamp(timestamp)
            sharing = tuple(other for other, other_token, _ in candidates if other_token == token and other != alias)
            return None if signed_at is None else Signed(alias, signed_at, nonce, max_age, sharing)
    return None


def _fresh(signed: Signed, now: float) -> bool:
    return abs(now - signed.timestamp) <= signed.max_age


def _forbidden(request: web.Request, reason: str = "the signature does not match") -> web.Response:
    log.warning("wechat hook %s %s refused: %s", request.method, request.path, reason)
    return problem(403, "Forbidden", reason, slug="forbidden", instance=request.path)


def _check(request: web.Request) -> Signed | web.Response:
    """The signed values of an authentic, fresh request, or the 403 to answer."""
    signed = _authorised(request)
    if signed is None:
        return _forbidden(request)
    if not _fresh(signed, time.time()):
        return _forbidden(request, f"the timestamp is more than {signed.max_age} seconds away from now")
    return signed


async def wechat_verify(request: web.Request) -> web.StreamResponse:
    """WeChat's server URL check: echo ``echostr`` when the signature matches and is fresh."""
    signed = _check(request)
    if isinstance(signed, web.Response):
        return signed
    log.info("wechat server URL verified for %s", signed.alias)
    return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")


async def _take_message(request: web.Request, alias: str, event: dict[str, str]) -> None:
    """A resident's text message to the account: feedback on the latest notice sent to them by WeChat."""
    openid = event["FromUserName"][:64]
    store = request.app[STORE]
    subscriber_id = await store.find_subscriber_by_openid(openid)
    await feedback_from_reply(store, request.app[SETTINGS], "wechat", alias, openid, subscriber_id,
                              event.get("Content", ""), datetime.now(UTC))  # fmt: skip


async def _first_push(store: Store, alias: str, event: dict[str, str]) -> bool:
    """False for a message WeChat already pushed (its answer came too late, so it pushed again, under a new
    signature): WeChat says to recognise the repeat by ``MsgId``. True for a new one, or one without a MsgId."""
    msgid = event.get("MsgId", "")
    if not ascii_digits(msgid) or len(msgid) > 64:
        return True
    now = time.time()
    if await store.remember_hook_nonce(f"wechat-msg:{alias}", msgid, now + REPEAT_WINDOW, now):
        return True
    log.info("wechat message on %s pushed again (MsgId %s): taken once", alias, msgid)
    return False


async def wechat_event(request: web.Request) -> web.StreamResponse:
    """A message or event pushed by WeChat; TEMPLATESENDJOBFINISH becomes a delivery receipt."""
    signed = _check(request)
    if isinstance(signed, web.Response):
        return signed
    alias = signed.alias
    body = await read_body(request, MAX_XML_BYTES)
    try:
        if body is None:
            raise ValueError("the message is too large")
        event = parse_event(body)
    except ValueError as exc:
        log.warning("wechat hook on %s: unreadable message: %s", alias, exc)
        return problem(400, "Bad request", str(exc), slug="bad-request", instance=request.path)
    receipt = event.get("MsgType") == "event" and event.get("Event") == EVENT
    msgid = event.get("MsgID", "")
    if receipt and (not msgid or len(msgid) > 64):
        return problem(400, "Bad request", "MsgID is missing or too long", slug="bad-request", instance=request.path)
    store = request.app[STORE]
    try:
        # the nonce is spent with the receipt: a push that could not be stored may come again
        async with store.db.transaction():
            if not await store.remember_hook_nonce(f"wechat:{alias}", f"{signed.timestamp}:{signed.nonce}",
                                                   signed.timestamp + signed.max_age + 1, time.time()):  # fmt: skip
                return _forbidden(request, "this request was received before (a replayed nonce)")
            if event.get("MsgType") == "text" and event.get("FromUserName"):
                if await _first_push(store, alias, event):
                    await _take_message(request, alias, event)
                return web.Response(text="success", content_type="text/plain")
            if not receipt:
                log.debug("wechat hook on %s: %s/%s ignored", alias, event.get("MsgType"), event.get("Event"))
                return web.Response(text="success", content_type="text/plain")
            status, detail = receipt_status(event.get("Status", ""))
            outcome = await apply_receipt(request, alias, msgid, status, detail, also=signed.sharing)
    except Exception:
        log.exception("wechat message %s on %s could not be recorded", msgid[:64], alias)
        return problem(503, "Unavailable", "the message could not be stored", slug="unavailable", instance=request.path)
    log.info("wechat receipt %s on %s: %s -> %s", msgid, alias, status, outcome)
    return web.Response(text="success", content_type="text/plain")


_SIGNED = (
    Param("signature", {"type": "string"}, required=True, description="sha1 of the sorted token, timestamp, nonce"),
    Param("timestamp", {"type": "string"}, required=True),
    Param("nonce", {"type": "string"}, required=True),
    Param("alias", {"type": "string"}, description="the wechat channel alias; without it, found by the signature"),
)
_SUCCESS = Answer('"success", as WeChat expects', "text/plain", {"type": "string", "enum": ["success"]})

ROUTES: list[Route] = [
    Route(
        "GET",
        "/hooks/wechat",
        wechat_verify,
        "WeChat server URL verification (echoes echostr)",
        "hooks",
        public=True,
        params=(*_SIGNED, Param("echostr", {"type": "string"})),
        success=Answer("the echostr, when the signature matches", "text/plain", {"type": "string"}),
        extra_responses={403: "bad, missing or stale signature"},
    ),
    Route(
        "POST",
        "/hooks/wechat",
        wechat_event,
        "WeChat pushed events: TEMPLATESENDJOBFINISH delivery receipts; residents' text messages become feedback",
        "hooks",
        public=True,
        params=_SIGNED,
        content={"text/xml": {"type": "string"}, "application/xml": {"type": "string"}},
        content_required=True,
        success=_SUCCESS,
        extra_responses={
            400: "not a readable WeChat XML message (a DTD or entity in any encoding included)",
            403: "bad, missing or stale signature, or a replayed nonce",
            503: "the message could not be stored; WeChat pushes it again",
        },
    ),
]

__all__ = ["ROUTES", "parse_event", "receipt_status", "wechat_event", "wechat_signature", "wechat_verify"]
