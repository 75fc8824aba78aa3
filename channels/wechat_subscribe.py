"""WeChat Official Account subscribe notifications (订阅通知) to residents who subscribed, by openid.

API: ``POST {api_base}/cgi-bin/message/subscribe/bizsend?access_token=...``, one call per message
(https://developers.weixin.qq.com/doc/service/api/notify/notify/api_sendnewsubscribemsg.html). Body:
``touser`` = openid, ``template_id``, ``data`` = {keyword: {"value": ...}}, optional ``page`` (the
web page a tap opens) and ``miniprogram`` {appid, pagepath}. Unlike template messages there is no
``client_msg_id``: the platform cannot drop a resend, so a message retried after a lost answer may
arrive twice.

Token, send loop and answers are those of ``channels.wechat_official.WechatAccountChannel`` (the same
token cache per appid, so template and subscribe aliases of one account share a token). The codes
that matter here:

    answer                                         result
    ---------------------------------------------  -----------------------------------------------
    errcode 0                                      Sent("d<delivery id>"; "d<delivery id>-r<n>" resent), or
                                                   Sent(str(msgid)) when the answer carries a usable msgid
    43101 refused / no subscription left           Failed("unreachable") -> the engine falls back (SMS)
    40003 invalid openid, 43004, 43019             Failed("unreachable")
    40001 / 40014 / 42001                          one token refresh per send, that message resent
    47003 invalid data, 40037 template, 41030 page Failed("errcode-<n>", errmsg)
    -1 busy                                        Retry; 45009 / 45011 pause the rest of the batch

Unlike template/send, bizsend answers an accepted message with errcode and errmsg only: the subscribe sends
document no other return parameter (the mini program's:
https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html),
and developers report that bizsend answers no msgid
(https://developers.weixin.qq.com/community/personal/oCJUsw6TJYPPKmKOJ1hYn13sraTk/question). So an accepted
message is recorded under an id of its own, as the generic HTTP gateway does: no receipt of ours names a
subscribe notification (the event WeChat pushes after it carries an id the answer never gave), and taking
errcode 0 for "it may have taken it" would send the notification again and again, each time using up one of
the resident's subscriptions.

Value limits by keyword type (the type is the keyword's name without its number: ``thing2`` ->
``thing``; same official page): thing <= 20 characters, number / letter / character_string <= 32,
symbol <= 5, phone_number <= 17, car_number <= 8, name <= 10 Chinese characters or 20 letters,
phrase <= 5 Chinese characters; time/date/amount have formats. WeChat refuses a longer value with
47003 instead of cutting it, so the free-text types (thing, name, phrase) are cut here: line breaks
become spaces and an over-long value keeps its first characters plus "…". The alert text itself
therefore shows only its first 19 characters in a ``thing`` keyword; point ``page`` or the mini
program at the full notice. Other types are sent as they are (cutting a number or a date would
change its meaning) and a bad one fails with 47003; ``fixed_data`` values are checked at start-up.
"""

from __future__ import annotations

import re
from typing import Any, Self

from pydantic import model_validator

from channels.base import OutboundMessage, SendResult, Sent, delivery_message_id
from channels.wechat_official import WechatAccountChannel, WechatAccountOptions

# Longest value per keyword type, in characters (name: see ``limit_of``).
VALUE_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "phrase": 5,
}
CUT_TYPES = frozenset({"thing", "name", "phrase"})  # free text: safe to shorten
ELLIPSIS = "…"


def keyword_type(key: str) -> str:
    """``thing12`` -> ``thing``, ``character_string3`` -> ``character_string``."""
    return key.rstrip("0123456789")


def limit_of(key: str, value: str) -> int | None:
    """The longest value keyword ``key`` takes, None when its type has no documented length limit."""
    kind = keyword_type(key)
    if kind == "name":
        return 20 if value.isascii() else 10  # 10 Chinese characters or 20 letters
    return VALUE_LIMITS.get(kind)


def fit_value(key: str, value: str) -> str:
    """``value`` made to fit keyword ``key``: free-text types are cut with an ellipsis, others left as they are."""
    if keyword_type(key) not in CUT_TYPES:
        return value
    value = re.sub(r"\s+", " ", value).strip()
    limit = limit_of(key, value)
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1].rstrip() + ELLIPSIS


class WechatSubscribeOptions(WechatAccountOptions):
    page: str | None = None  # web page a tap opens; "{notice_id}" is replaced

    @model_validator(mode="after")
    def _fixed_data_fits(self) -> Self:
        for key, value in self.fixed_data.items():
            limit = limit_of(key, value)
            if limit is not None and len(value) > limit:
                raise ValueError(f"fixed_data.{key}: {keyword_type(key)} values take at most {limit} characters")
        return self


class WechatSubscribeChannel(WechatAccountChannel):
    """Subscribe notifications (message/subscribe/bizsend)."""

    Options = WechatSubscribeOptions
    send_path = "/cgi-bin/message/subscribe/bizsend"
    quota_name = "subscribe-message"

    def accepted_without_msgid(self, message: OutboundMessage) -> SendResult:
        """bizsend's documented answer to an accepted message (errcode 0, errmsg): recorded under its own id."""
        return Sent(delivery_message_id(message.delivery_id, message.resend))

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        opts = self.opts
        assert isinstance(opts, WechatSubscribeOptions)
        data = {key: {"value": fit_value(key, value)} for key, value in self.data_values(message).items()}
        body: dict[str, Any] = {"touser": message.recipient, "template_id": opts.template_id, "data": data}
        if opts.page:
            body["page"] = opts.page.replace("{notice_id}", str(message.notice_id))
        miniprogram = self.miniprogram(message)
        if miniprogram:
            body["miniprogram"] = miniprogram
        return body


__all__ = ["WechatSubscribeChannel", "WechatSubscribeOptions", "fit_value", "keyword_type", "limit_of"]
