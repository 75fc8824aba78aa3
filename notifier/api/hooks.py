"""Callbacks from Kannel: delivery reports (DLR) and inbound SMS (MO, e.g. "TD" = unsubscribe).

Both hooks name a ``kannel`` channel alias (``?alias=sms-kannel``); an alias of another type (a Tencent or
Aliyun alias with its own ``hook_token``) is refused. What proves the caller differs per hook:

- a DLR carries ``sig``, the HMAC of the alias and the message id keyed with the alias's ``hook_token``
  (``channels.kannel.dlr_signature``), written into the dlr-url by the adapter for that one message.
  Kannel stores dlr-urls and logs the failed ones; a leaked one can only report on its own message.
- an MO carries ``token``, the alias's ``hook_token`` itself (Kannel's sms-service get-url is one fixed
  URL): it must stay secret (``docs/kannel.md`` says how to rotate it, ``hook_token_previous``).

Comparisons are constant-time; a missing or wrong proof, an unknown alias, an alias of another type or
one without ``hook_token`` is a 403 problem. Kannel counts only 200 and 202 as success and, when its
smsbox sets ``http-request-retry``, calls again after anything else; so the hooks answer 200 with an
empty body (which also sends no reply SMS), and 503 only when a receipt could not be stored and a retry
would help. An unknown or repeated receipt is normal (a DLR for a message sent before a restore, a second
DLR type for one message) and answered 200.

    GET|POST /hooks/kannel/dlr ?alias&id=<our message id>&sig&type=%d[&reply=%A]
        matched on the alias, then on every failover alias listing it (channels.failover);
        type 1 -> delivered; 2 (not delivered to the phone) and 16 (refused by the SMSC) -> failed;
        4 (queued on the SMSC) -> buffered, 8 (accepted by the SMSC) -> submitted: kept, no state change.
    GET|POST /hooks/kannel/mo ?alias&token&from=%p&text=%b[&charset=%C&coding=%c&id=%I]
        an opt-out word ("TD", "T", "N", "R", "退订"; NFKC-normalised, trimmed, any case: "ＴＤ " counts) from a
        resident's phone -> opt-out of the sms channel (source "sms-reply") and an audit entry; the alias's
        ``confirm_word`` ("1") confirms the latest notice awaiting that number's confirmation; any other text
        becomes a feedback item on the latest notice sent to that number (``engine.replies``). A reply the
        database cannot take now is kept in the inbox and applied by housekeeping (``engine.optouts``): 200
        all the same. Only when it cannot be kept either is the answer 503, for Kannel to call again.
        Kannel calls again too when our answer did not reach it (``http-request-retry``), though the reply
        was taken: with ``id`` (Kannel's ``%I``, the same on every call for one message) a message taken in
        the last day is answered 200 and not taken again (a second "1" would confirm an older notice).

The text of an MO comes as Kannel sends it with ``%b`` (the message's own bytes; ``%a`` squeezes space bytes
and so breaks UCS-2 texts): UTF-8, or UTF-16BE when ``coding=2``/``charset=UTF-16BE``, so the raw query is
decoded here rather than by aiohttp (which would assume UTF-8).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl

from aiohttp import web

from channels.kannel import dlr_signature
from notifier.api.bodies import read_body
from notifier.api.hook_secrets import hook_secrets, matches_any
from notifier.api.keys import SETTINGS, STORE
from notifier.api.problems import problem
from notifier.api.routing import Answer, Param, Route
from notifier.api.sms_replies import first_push, forget_push, take_reply
from notifier.api.wake import wake
from notifier.config import ChannelConfig
from notifier.domain.contacts import normalise_phone
from notifier.domain.errors import ConfigError
from notifier.domain.text import ascii_digits, storable
from notifier.engine.context import EngineContext

log = logging.getLogger("notifier.hooks")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DLR_TYPES = {1: "delivered", 2: "failed", 4: "buffered", 8: "submitted", 16: "failed"}
DLR_DETAIL = {2: "not delivered to the phone", 16: "refused by the SMSC"}
MAX_PARAM_BYTES = 2048
MAX_FORM_BYTES = 64 * 1024


async def _params(request: web.Request) -> dict[str, bytes]:
    """Query string and form body as raw bytes per name (the last value wins); decoding is the caller's."""
    raw = request.rel_url.raw_query_string
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        body = await read_body(request, MAX_FORM_BYTES) or b""  # a larger form is no report of Kannel's
        raw = "&".join(p for p in (raw, body.decode("latin-1")) if p)
    return {
        name: value.encode("latin-1")[:MAX_PARAM_BYTES]
        for name, value in parse_qsl(raw, keep_blank_values=True, encoding="latin-1")
    }


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", errors="replace")


def _kannel_alias(request: web.Request, params: dict[str, bytes]) -> tuple[str, list[bytes]] | None:
    """The alias named by the request and its hook secrets, when it is a Kannel alias that has one."""
    alias = _text(params.get("alias"))
    channel: ChannelConfig | None = request.app[SETTINGS].channels.get(alias)
    if channel is None or channel.type != "kannel":
        return None
    secrets = hook_secrets(channel)
    return (alias, secrets) if secrets else None


def _mo_authorised(request: web.Request, params: dict[str, bytes]) -> str | None:
    """The alias when the request presents its hook token (or the previous one during a rotation)."""
    found = _kannel_alias(request, params)
    if found is None:
        return None
    alias, secrets = found
    return alias if matches_any(params.get("token", b""), secrets) else None


def _dlr_authorised(request: web.Request, params: dict[str, bytes], message_id: str) -> str | None:
    """The alias when ``sig`` is the adapter's signature of this alias and message id."""
    found = _kannel_alias(request, params)
    if found is None:
        return None
    alias, secrets = found
    expected = [dlr_signature(secret.decode("utf-8"), alias, message_id).encode("ascii") for secret in secrets]
    return alias if matches_any(params.get("sig", b""), expected) else None


async def apply_receipt(
    request: web.Request,
    alias: str,
    provider_message_id: str,
    status: str,
    detail: str | None,
    also: Sequence[str] = (),
) -> str:
    """Record one receipt for ``alias`` or a failover alias sending through it (kept once when neither has its
    send yet); ``also``: other aliases whose sends the hook speaks for (of one WeChat account), looked at with
    theirs. The outcome.

    With the engine's context when the process runs one, else with one over the configured adapters (an
    API node): either way a failure hands the resident to the next channel, and the workers are told.
    Raises when the receipt could not be stored: each hook decides what its platform should hear then.
    """
    from notifier.api.notices import planning_context
    from notifier.engine import record_receipt  # the engine is the service layer the hooks hand over to

    try:
        context: EngineContext | None = await planning_context(request)
    except ConfigError:  # an adapter this process cannot build: the receipt is still recorded, without fallback
        log.warning("receipt on %s recorded without fallback: the channel adapters cannot be built here", alias)
        context = None
    settings = request.app[SETTINGS]
    owners = [*settings.failover_owners(alias)]  # their deliveries carry the failover's alias
    for other in also:
        owners += [other, *settings.failover_owners(other)]
    owners = list(dict.fromkeys(owner for owner in owners if owner != alias))
    outcome = await record_receipt(
        request.app[STORE], alias, provider_message_id, status, detail, context=context, owners=owners
    )
    if status == "failed" and outcome == "applied":
        wake(request.app)  # a fallback on the resident's next channel may be due now
    return str(outcome)


def _forbidden(request: web.Request, what: str) -> web.Response:
    log.warning("hook %s refused: not a kannel alias with a hook token, or wrong %s", request.path, what)
    return problem(403, "Forbidden", f"unknown kannel channel alias or wrong {what}", slug="forbidden",
                   instance=request.path)


def _done() -> web.Response:
    """Kannel's idea of success: 200 (not 204, which it counts as a failed request), no reply SMS."""
    return web.Response(status=200, text="", content_type="text/plain")


def _unavailable(request: web.Request, what: str) -> web.Response:
    return problem(503, "Unavailable", f"the {what} could not be stored; send it again", slug="unavailable",
                   instance=request.path)


async def kannel_dlr(request: web.Request) -> web.StreamResponse:
    """A Kannel delivery report for one of our messages."""
    params = await _params(request)
    message_id, raw_type = _text(params.get("id")), _text(params.get("type"))
    alias = _dlr_authorised(request, params, message_id)
    if alias is None:
        return _forbidden(request, "delivery report signature")
    dlr_type = int(raw_type) if ascii_digits(raw_type) and len(raw_type) < 4 else None
    status = DLR_TYPES.get(dlr_type or 0)
    if not message_id or status is None:
        log.warning("kannel DLR on %s ignored: id %r, type %r", alias, message_id[:40], raw_type[:10])
        return _done()
    reply = storable(_text(params.get("reply"))).strip()[:200]  # an SMSC's UCS-2 "text:" carries NUL bytes
    detail = "; ".join(x for x in (DLR_DETAIL.get(dlr_type or 0, ""), reply) if x) or None
    try:
        outcome = await apply_receipt(request, alias, message_id, status, detail)
    except Exception:
        log.exception("kannel DLR %s on %s (type %s) could not be recorded", message_id[:40], alias, dlr_type)
        return _unavailable(request, "delivery report")
    log.info("kannel DLR %s on %s: type %s -> %s (%s)", message_id[:40], alias, dlr_type, status, outcome)
    return _done()


def _decode_mo(params: dict[str, bytes]) -> str:
    raw = params.get("text", b"")
    charset = _text(params.get("charset")).upper().replace("_", "-")
    if _text(params.get("coding")) == "2" or charset in ("UTF-16BE", "UTF-16", "UCS-2", "UCS2"):
        return raw.decode("utf-16-be", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def kannel_mo(request: web.Request) -> web.StreamResponse:
    """An inbound SMS forwarded by Kannel's sms-service; opt-out words unsubscribe the sender from SMS."""
    params = await _params(request)
    alias = _mo_authorised(request, params)
    if alias is None:
        return _forbidden(request, "hook token")
    try:
        phone = normalise_phone(_text(params.get("from")))
    except ValueError:
        log.info("kannel MO on %s from an unusable sender number ignored", alias)
        return _done()
    text = _decode_mo(params)
    kannel_id = _text(params.get("id")).strip()  # %I: the same on each of Kannel's calls for one message
    hook = f"kannel-mo:{alias}"
    if kannel_id and not await first_push(request, hook, kannel_id):
        log.info("kannel MO on %s: message %s delivered again, taken once", alias, kannel_id[:64])
        return _done()
    if not await take_reply(request, "kannel", alias, phone, text):
        if kannel_id:
            await forget_push(request, hook, kannel_id)  # Kannel's next call with it must be taken
        return _unavailable(request, "opt-out")
    return _done()


_TEXT = {"type": "string"}
_DLR_FIELDS = {"alias": _TEXT, "id": _TEXT, "sig": _TEXT, "type": {"type": "string", "pattern": "^[0-9]{1,3}$"},
               "reply": _TEXT}
_MO_FIELDS = {"alias": _TEXT, "token": _TEXT, "from": _TEXT, "text": _TEXT, "charset": _TEXT, "coding": _TEXT,
              "id": _TEXT}
_PROOF = {"alias", "sig", "token"}
_EMPTY = Answer("received (an empty body: Kannel sends no reply SMS)", "text/plain", {"type": "string", "maxLength": 0})


def _route(method: str, path: str, handler: Handler, summary: str, fields: dict[str, dict[str, str]],
           responses: Mapping[int, str | Answer]) -> Route:
    """GET takes the fields in the query; POST in the query, a form body, or both (the body wins)."""
    in_query = method == "GET"
    params = tuple(Param(name, schema, required=in_query and name in _PROOF) for name, schema in fields.items())
    form = {"type": "object", "properties": fields}
    return Route(method, path, handler, summary, "hooks", public=True, params=params, success=_EMPTY,
                 content={} if in_query else {"application/x-www-form-urlencoded": form},
                 extra_responses=responses)


ROUTES: list[Route] = [
    _route(method, path, handler, summary, fields, responses)
    for path, handler, summary, fields, responses in (
        ("/hooks/kannel/dlr", kannel_dlr, "Kannel delivery report (dlr-url); answers 200 with an empty body",
         _DLR_FIELDS,
         {403: "not a kannel alias with a hook token, or a wrong signature",
          503: "the report could not be stored; Kannel calls again when its smsbox sets http-request-retry"}),
        ("/hooks/kannel/mo", kannel_mo,
         "Inbound SMS from Kannel's sms-service (get-url); answers 200 with an empty body (no reply SMS)",
         _MO_FIELDS,
         {403: "not a kannel alias with a hook token, or a wrong token",
          503: "the opt-out could neither be stored nor kept; Kannel calls again when http-request-retry is set"}),
    )
    for method in ("GET", "POST")
]  # fmt: skip

__all__ = ["ROUTES", "apply_receipt", "kannel_dlr", "kannel_mo"]
