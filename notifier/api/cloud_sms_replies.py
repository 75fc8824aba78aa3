"""Residents' SMS replies (upstream, MO) pushed by the cloud SMS platforms: Aliyun SmsUp and Tencent Cloud's
SMS reply callback. Each reply goes the way of a Kannel MO (``sms_replies.take_reply``): an opt-out word
unsubscribes the sender from SMS, the alias's ``confirm_word`` confirms the latest notice awaiting that
number's confirmation, any other text becomes a feedback item on the latest notice sent to that number.

The county configures, in each platform's console, ``https://<host>/hooks/aliyun-sms/up?alias=<alias>&token=
<hook_token>`` (短信服务 > 系统设置 > 上行消息 > HTTP 批量推送模式) and
``https://<host>/hooks/tencent-sms/reply?alias=<alias>&token=<hook_token>`` (回复短信回调). Neither platform
signs these pushes, so they are authenticated as the delivery-report hooks are (``cloud_sms_hooks``): the
alias's ``hook_token`` in the URL, compared in constant time, never logged. Serve them over HTTPS only.

    POST /hooks/aliyun-sms/up ?alias&token     a JSON array of SmsUp entries
        (https://help.aliyun.com/zh/sms/developer-reference/smsup-http , document 101847):
        ``phone_number`` (mainland number), ``content`` (the reply), ``send_time``, ``dest_code``,
        ``sequence_id`` (a string in the current page, a number in older ones: both read).
        Answer 200 ``{"code": 0, "msg": "接收成功"}``; Aliyun pushes again after 1, 5 and 10 minutes on
        anything else.
    POST /hooks/tencent-sms/reply ?alias&token one JSON object per reply
        (https://cloud.tencent.com/document/api/382/59179 , English: https://www.tencentcloud.com/document/
        product/382/43548): ``mobile``, ``nationcode``, ``text`` (the reply), ``sign``, ``time`` (Unix
        seconds), ``extend``. An array of such objects is read too. Answer 200 ``{"result": 0, "errmsg": "OK"}``.

    alias missing, not a channel of that platform's type, without a hook_token, or a wrong token -> 403 problem
    body not JSON (an array for Aliyun; an object or array for Tencent)                          -> 400 problem
    body over MAX_BODY_BYTES                                                                    -> 413 problem
    a reply could be neither stored nor kept in the inbox                 -> 503 problem: the platform pushes again

An entry that is not an object, lacks a usable number or text, or comes from a number that is no mobile
number is skipped (logged without the number). A push repeated by the platform (its answer lost) is
recognised by a hash of the entry in ``hook_nonces`` for a day and not taken twice
(``sms_replies.first_push``); a reply answered 503 is forgotten there, so that the platform's next push is taken.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from notifier.api.cloud_sms_hooks import (
    ALIYUN,
    HOOK_PARAMS,
    TENCENT,
    PushKind,
    Vendor,
    push_errors,
    push_hook,
    push_success,
)
from notifier.api.problems import problem
from notifier.api.routing import Route
from notifier.api.sms_replies import first_push, forget_push, take_reply
from notifier.domain.contacts import normalise_phone

log = logging.getLogger("notifier.hooks.cloud_sms")

MAX_BODY_BYTES = 1024 * 1024
MAX_TEXT_CHARS = 2048


@dataclass(frozen=True)
class InboundSms:
    phone: str  # as the platform wrote it; normalised before use
    text: str
    identity: str  # what makes this reply this reply (the platform's fields), hashed before it is stored


def _field(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def parse_aliyun_up(body: bytes) -> list[InboundSms | None]:
    """An SmsUp push: a JSON array; None for an entry that is no usable reply."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, list):
        raise ValueError("an SmsUp push is a JSON array")
    found: list[InboundSms | None] = []
    for entry in data:
        if not isinstance(entry, dict):
            found.append(None)
            continue
        phone, text = _field(entry, "phone_number"), _field(entry, "content")
        identity = "|".join(_field(entry, name) for name in ("sequence_id", "dest_code", "send_time"))
        found.append(InboundSms(phone, text, f"{identity}|{phone}|{text}") if phone and text else None)
    return found


def parse_tencent_reply(body: bytes) -> list[InboundSms | None]:
    """A Tencent reply callback: one JSON object (an array of them is read too)."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, list | dict):
        raise ValueError("a reply callback is a JSON object")
    entries = data if isinstance(data, list) else [data]
    found: list[InboundSms | None] = []
    for entry in entries:
        if not isinstance(entry, dict):
            found.append(None)
            continue
        mobile, nation, text = _field(entry, "mobile"), _field(entry, "nationcode"), _field(entry, "text")
        phone = f"+{nation}{mobile}" if nation and mobile and not mobile.startswith(("+", "00")) else mobile
        identity = f"{_field(entry, 'time')}|{_field(entry, 'extend')}|{phone}|{text}"
        found.append(InboundSms(phone, text, identity) if mobile and text else None)
    return found


REPLIES = PushKind("MO", "the platform's reply push")


async def _take_replies(
    request: web.Request, vendor: Vendor, alias: str, replies: list[InboundSms | None]
) -> web.Response | None:
    taken = skipped = 0
    for reply in replies:
        try:
            phone = normalise_phone(reply.phone) if reply is not None else None
        except ValueError:
            phone = None
        if reply is None or phone is None:
            skipped += 1
            continue
        hook = f"{vendor.name}-up:{alias}"
        if not await first_push(request, hook, reply.identity):
            log.info("%s MO on %s: a repeated push of a reply already taken", vendor.name, alias)
            continue
        if not await take_reply(request, vendor.name, alias, phone, reply.text[:MAX_TEXT_CHARS]):
            await forget_push(request, hook, reply.identity)  # the platform's next push of it must be taken
            return problem(503, "Unavailable", "the replies could not be stored; push them again",
                           slug="unavailable", instance=request.path)  # fmt: skip
        taken += 1
    log.info("%s MO push on %s: %d replies taken, %d skipped", vendor.name, alias, taken, skipped)
    return None


aliyun_sms_up = push_hook(ALIYUN, REPLIES, parse_aliyun_up, _take_replies)
"""An Aliyun SmsUp push (HTTP batch push mode): residents' replies."""
tencent_sms_reply = push_hook(TENCENT, REPLIES, parse_tencent_reply, _take_replies)
"""A Tencent Cloud SMS reply callback: one resident's reply."""


_ERRORS = push_errors("the body is not the platform's JSON reply push",
                      "a reply could be neither stored nor kept; the platform should push again")  # fmt: skip


_ALIYUN_ITEM = {"description": "one reply; read: phone_number, content, send_time, dest_code, sequence_id"}
_TENCENT_ITEM = {"type": "object", "description": "one reply; read: mobile, nationcode, text, time, extend"}

ROUTES: list[Route] = [
    Route("POST", "/hooks/aliyun-sms/up", aliyun_sms_up,
          'Aliyun SMS replies (SmsUp HTTP batch push); answers {"code": 0, "msg": "接收成功"}',
          "hooks", public=True, params=HOOK_PARAMS, content_required=True,
          content={"application/json": {"type": "array", "items": _ALIYUN_ITEM}},
          success=push_success(ALIYUN), extra_responses=_ERRORS),
    Route("POST", "/hooks/tencent-sms/reply", tencent_sms_reply,
          'Tencent Cloud SMS reply callback; answers {"result": 0, "errmsg": "OK"}',
          "hooks", public=True, params=HOOK_PARAMS, content_required=True,
          content={"application/json": {"oneOf": [_TENCENT_ITEM, {"type": "array", "items": _TENCENT_ITEM}]}},
          success=push_success(TENCENT), extra_responses=_ERRORS),
]  # fmt: skip

__all__ = ["ROUTES", "aliyun_sms_up", "parse_aliyun_up", "parse_tencent_reply", "tencent_sms_reply"]
