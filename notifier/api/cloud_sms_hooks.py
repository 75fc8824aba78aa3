"""Delivery receipts pushed by the cloud SMS platforms: Aliyun SmsReport and Tencent Cloud status callbacks.

Both platforms POST a JSON array of reports (several per push) to a URL the county configures in their
console; we give them ``https://<host>/hooks/aliyun-sms?alias=<alias>&token=<hook_token>`` and
``https://<host>/hooks/tencent-sms?alias=<alias>&token=<hook_token>``. Neither push is signed (Aliyun's
HTTP batch push and Tencent's status callback document no signature to verify), so the token in the URL
is the only proof that a push comes from the platform: it is the alias's ``hook_token`` option, compared
in constant time, and never logged. Serve these URLs over HTTPS only.

    POST /hooks/aliyun-sms ?alias&token    body: SmsReport array (https://help.aliyun.com/document_detail/101867.html)
        each report's ``biz_id`` (= SendSms ``BizId``) -> ``success`` true: delivered; else failed,
        with ``err_code err_msg report_time`` as the detail. Answer 200 ``{"code": 0, "msg": "接收成功"}``.
    POST /hooks/tencent-sms ?alias&token   body: status callback array
                                           (https://www.tencentcloud.com/zh/document/product/382/43547)
        each report's ``sid`` (= SendSms ``SerialNo``) -> ``report_status`` SUCCESS: delivered; else
        failed, with ``errmsg description user_receive_time`` as the detail. Answer 200
        ``{"result": 0, "errmsg": "OK"}``.

    alias missing, not a channel of that platform's type, without a hook_token, or a wrong token -> 403 problem
    body not a JSON array (or not UTF-8 JSON at all)                                            -> 400 problem
    body over MAX_BODY_BYTES                                                                    -> 413 problem
    a receipt could not be stored (database down)                 -> 503 problem: the platform pushes again
                                                                     (Aliyun after 1, 5, 10 min)

Receipts are matched on the alias, then on every failover alias listing it; a failure hands the resident to
the next channel, on an API node as in a process with workers - see ``hooks.apply_receipt``.
Entries without an id (or with an absurd one) are skipped; a receipt for an unknown id is kept for a
send not yet recorded and is otherwise harmless; a repeated receipt is ignored. Phone numbers in the
reports are never read nor logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from channels.aliyun_sms import Receipt, parse_aliyun_receipts
from channels.tencent_sms import parse_tencent_callback
from notifier.api.bodies import read_body
from notifier.api.hook_secrets import hook_secrets, matches_any
from notifier.api.hooks import apply_receipt
from notifier.api.keys import SETTINGS
from notifier.api.problems import problem
from notifier.api.routing import Answer, Param, Route
from notifier.domain.text import storable

log = logging.getLogger("notifier.hooks.cloud_sms")

MAX_BODY_BYTES = 1024 * 1024  # a push of a few thousand reports
MAX_ID_CHARS = 128  # BizId "496112870375361879^0", SerialNo "2028:f825de8f0747639f4100"
MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Vendor:
    """A cloud SMS platform as its hooks see it: its name in logs, the channel type its aliases have, and the
    answer it expects once a push is read (anything else, and it pushes again)."""

    name: str  # "aliyun"
    channel_type: str  # "aliyun_sms"
    answer: dict[str, Any]


ALIYUN = Vendor("aliyun", "aliyun_sms", {"code": 0, "msg": "接收成功"})
TENCENT = Vendor("tencent", "tencent_sms", {"result": 0, "errmsg": "OK"})


def hook_alias(request: web.Request, channel_type: str) -> str | None:
    """The alias when it is a ``channel_type`` channel with a hook token and the request presents it (or, while a
    rotation is under way, its ``hook_token_previous``)."""
    alias = request.query.get("alias", "")
    channel = request.app[SETTINGS].channels.get(alias)
    if channel is None or channel.type != channel_type:
        return None
    expected = hook_secrets(channel)
    presented = request.query.get("token", "").encode("utf-8", errors="replace")
    return alias if expected and matches_any(presented, expected) else None


@dataclass(frozen=True)
class PushKind:
    """What a platform pushes to a hook, as its logs and problems name it."""

    name: str  # "receipt", "MO"
    body: str  # what the body is, said when it is not: "a JSON array of reports"


ParsedT = TypeVar("ParsedT")
Take = Callable[[web.Request, Vendor, str, ParsedT], Awaitable[web.Response | None]]
"""Takes what a push to (request, vendor, alias) held: None when taken, else the problem to answer."""


def push_hook(
    vendor: Vendor, kind: PushKind, parse: Callable[[bytes], ParsedT], take: Take[ParsedT]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of one of ``vendor``'s push hooks: the alias and its token, the body read with ``parse``
    (``_read_push``: 403, 413, 400), then ``take``; the platform's own answer when it took the push."""

    async def hook(request: web.Request) -> web.Response:
        read = await _read_push(request, vendor, kind, parse)
        if isinstance(read, web.Response):
            return read
        refused = await take(request, vendor, *read)
        if refused is not None:
            return refused
        text = json.dumps(vendor.answer, ensure_ascii=False)
        return web.Response(text=text, content_type="application/json", charset="utf-8")

    return hook


async def _read_push(
    request: web.Request, vendor: Vendor, kind: PushKind, parse: Callable[[bytes], ParsedT]
) -> tuple[str, ParsedT] | web.Response:
    """(alias, what ``parse`` read) of a push to one of ``vendor``'s aliases presenting its hook token; else the
    problem to answer: 403 for the alias or token, 413 for a body over ``MAX_BODY_BYTES``, 400 for one
    ``parse`` cannot read."""
    alias = hook_alias(request, vendor.channel_type)
    if alias is None:
        log.warning("%s %s hook refused: unknown alias, not a %s channel, or wrong token", vendor.name, kind.name,
                    vendor.channel_type)  # fmt: skip
        return problem(403, "Forbidden", f"unknown {vendor.channel_type} alias or wrong hook token",
                       slug="forbidden", instance=request.path)  # fmt: skip
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        log.warning("%s %s push on %s refused: over %d bytes", vendor.name, kind.name, alias, MAX_BODY_BYTES)
        return problem(413, "Payload too large", f"a {kind.name} push is at most {MAX_BODY_BYTES} bytes",
                       slug="too-large", instance=request.path)  # fmt: skip
    try:
        return alias, parse(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        log.warning("%s %s push on %s unreadable: %s", vendor.name, kind.name, alias, reason)
        return problem(400, "Bad request", f"the body is not {kind.body}: {reason}", slug="bad-request",
                       instance=request.path)  # fmt: skip


def push_errors(bad_body: str, unavailable: str) -> dict[int, str]:
    """The problems of a push hook, for the API description."""
    return {
        400: bad_body,
        403: "unknown alias, not a channel of this platform, or wrong hook token",
        413: "the body is too large",
        503: unavailable,
    }


def push_success(vendor: Vendor) -> Answer:
    keys = {name: {"const": value} for name, value in vendor.answer.items()}
    return Answer("the push was read", "application/json", {"type": "object", "properties": keys})


HOOK_PARAMS = (
    Param("alias", {"type": "string"}, required=True, description="the channel alias the push is for"),
    Param("token", {"type": "string"}, required=True, description="the alias's hook_token"),
)

RECEIPTS = PushKind("receipt", "a JSON array of reports")


async def _take_receipts(
    request: web.Request, vendor: Vendor, alias: str, receipts: list[Receipt]
) -> web.Response | None:
    outcomes: dict[str, int] = {}
    for receipt in receipts:
        message_id = receipt.provider_message_id.strip()
        if not message_id or len(message_id) > MAX_ID_CHARS or storable(message_id) != message_id:  # none of ours
            log.warning("%s receipt on %s with an unusable id skipped (%d chars)", vendor.name, alias,
                        len(message_id))  # fmt: skip
            continue
        detail = storable(receipt.detail)[:MAX_DETAIL_CHARS] or None
        try:
            outcome = await apply_receipt(request, alias, message_id, receipt.status, detail)
        except Exception:
            log.exception("%s receipt %s on %s could not be recorded", vendor.name, message_id, alias)
            return problem(503, "Unavailable", "the receipts could not be stored; push them again",
                           slug="unavailable", instance=request.path)
        log.info("%s receipt %s on %s: %s (%s)", vendor.name, message_id, alias, receipt.status, outcome)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    log.info("%s receipt push on %s: %d reports, %s", vendor.name, alias, len(receipts),
             outcomes or "nothing recorded")  # fmt: skip
    return None


aliyun_sms_receipts = push_hook(ALIYUN, RECEIPTS, parse_aliyun_receipts, _take_receipts)
"""An Aliyun SmsReport push (HTTP batch push mode): delivery reports matched by BizId."""
tencent_sms_receipts = push_hook(TENCENT, RECEIPTS, parse_tencent_callback, _take_receipts)
"""A Tencent Cloud SMS status callback: delivery reports matched by sid (the SendSms SerialNo)."""

_ERRORS = push_errors("the body is not a JSON array of reports",
                      "the receipts could not be stored; the platform should push again")  # fmt: skip


def _reports(fields: str) -> dict[str, Any]:
    """Any JSON array: an entry that is not an object with a usable id is skipped, so its items are open."""
    item = {"description": f"one report, an object; read: {fields}; anything else in it is ignored"}
    return {"application/json": {"type": "array", "items": item}}


ROUTES: list[Route] = [
    Route("POST", "/hooks/aliyun-sms", aliyun_sms_receipts,
          'Aliyun SMS delivery receipts (SmsReport HTTP batch push); answers {"code": 0, "msg": "接收成功"}',
          "hooks", public=True, params=HOOK_PARAMS, content_required=True,
          content=_reports("biz_id, success, err_code, err_msg, report_time"),
          success=push_success(ALIYUN), extra_responses=_ERRORS),
    Route("POST", "/hooks/tencent-sms", tencent_sms_receipts,
          'Tencent Cloud SMS status callback; answers {"result": 0, "errmsg": "OK"}',
          "hooks", public=True, params=HOOK_PARAMS, content_required=True,
          content=_reports("sid, report_status, errmsg, description, user_receive_time"),
          success=push_success(TENCENT), extra_responses=_ERRORS),
]  # fmt: skip

__all__ = [
    "ALIYUN",
    "HOOK_PARAMS",
    "ROUTES",
    "TENCENT",
    "PushKind",
    "Vendor",
    "aliyun_sms_receipts",
    "hook_alias",
    "push_errors",
    "push_hook",
    "push_success",
    "tencent_sms_receipts",
]
