"""WeChat Official Account template messages to residents who follow the county's account (by openid).

API: ``POST {api_base}/cgi-bin/message/template/send?access_token=...``, one call per message
(https://developers.weixin.qq.com/doc/service/en/api/notify/template/api_sendtemplatemessage.html);
the token comes from ``POST /cgi-bin/stable_token``
(https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken) through a shared
``TokenCache``. Error codes: https://developers.weixin.qq.com/doc/store/API/basics/commErrCode.html .
Delivery receipts (TEMPLATESENDJOBFINISH) arrive at ``notifier.api.wechat_hooks``.
``WechatAccountChannel`` (token, send loop, answer table) is shared with the subscribe-notification
adapter in ``channels.wechat_subscribe``, which differs only in endpoint and body.

The body: ``touser`` = openid, ``template_id``, ``data`` = {title_key: subject, body_key: text, plus
``fixed_data``}, optional ``url`` / ``miniprogram``, and ``client_msg_id`` = our idempotency key, so a
retry within ten minutes is not delivered twice. Since 2023-05 each keyword is shown up to 20
characters and longer values are cut by WeChat, not refused.

    answer                                         result
    ---------------------------------------------  -----------------------------------------------
    errcode 0 + msgid (an integer or a string)     Sent(str(msgid))  (int64: kept as a string)
    errcode 0 without a usable msgid (missing,     Retry(UNRECOGNISED): the platform may have taken it
      null, empty, a boolean, a fraction, a list)
    40001 / 40014 / 42001 (token invalid/expired)  refresh the token once per send, resend that message;
                                                   rejected again -> Retry, and Retry for the rest
    43004 not following, 40003 invalid openid,
    43019 blacklisted, 43101 refused               Failed("unreachable") -> the engine falls back
    45009 daily quota reached                      Retry(retry_after = next midnight Asia/Shanghai) for
                                                   this and every remaining message; no further calls
    45011 minute quota                             Retry(retry_after=60) for this and the rest of the batch
    -1 system busy                                 Retry
    any other errcode (40037 template, 47003 ...)  Failed("errcode-<n>", errmsg)
    no JSON object, errcode not an integer         Retry
    transport error / HTTP 5xx / 429               Retry (channels.http)
    token fetch fails                              its Retry / Failed("token") for the whole batch

Adapters never sleep or loop; the only repeat is the single resend after a token refresh.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.base import (
    ChannelOptions,
    ChannelSetup,
    Failed,
    OutboundMessage,
    Retry,
    SendResult,
    Sent,
    message_id_of,
)
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions, HttpReply
from channels.wechat_token import (
    IssuedToken,
    MemoryTokenCache,
    TokenCache,
    TokenCaches,
    TokenError,
    expires_in_of,
    shared_token_caches,
)
from notifier.domain.text import ascii_digits

log = logging.getLogger("notifier.channels.wechat_official")

TOKEN_CODES = frozenset({40001, 40014, 42001})
UNREACHABLE_CODES = frozenset({40003, 43004, 43019, 43101})
QUOTA_TIMEZONE = ZoneInfo("Asia/Shanghai")


class MiniProgram(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appid: str
    pagepath: str = ""  # "{notice_id}" is replaced


class WechatAccountOptions(HttpOptions):
    """Options common to the account's message kinds (template messages, subscribe notifications)."""

    appid: str
    secret: SecretStr
    template_id: str
    api_base: str = "https://api.weixin.qq.com"
    body_key: str = "thing2"  # template keyword that receives the message text
    title_key: str | None = "thing1"  # template keyword that receives the subject (None: not sent)
    fixed_data: dict[str, str] = Field(default_factory=dict)  # keywords with a constant value, e.g. the issuing office
    miniprogram: MiniProgram | None = None
    callback_token: SecretStr | None = None  # "Token" of the server URL setting, for receipts
    callback_max_age: int = Field(300, ge=10, le=3600)  # seconds a signed callback stays acceptable (either way)


class WechatOfficialOptions(WechatAccountOptions):
    url: str | None = None  # page opened by a tap; "{notice_id}" is replaced (a mini program wins over it)


def seconds_until_quota_reset(now: float) -> float:
    """Seconds from ``now`` (epoch) to the next midnight in Asia/Shanghai, when the daily quota resets."""
    local = datetime.fromtimestamp(now, QUOTA_TIMEZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, midnight.timestamp() - now)


def utf8_json(body: dict[str, Any]) -> dict[str, Any]:
    """Request arguments posting ``body`` as UTF-8 JSON (not \\u-escaped), as the platforms expect."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return {"data": data, "headers": {"Content-Type": "application/json; charset=utf-8"}}


def errcode_of(body: Any) -> int | None:
    """The errcode of a JSON answer (0 when absent), None when the answer is not a JSON object or its errcode is
    not an integer (an integral number or a string of one, as some proxies re-encode it): ``true``, ``0.5``,
    ``Infinity`` or ``null`` say nothing, and are not read as 0 or 1."""
    if not isinstance(body, dict):
        return None
    value = body.get("errcode", 0)
    if isinstance(value, str):
        value = value.strip()
        return int(value) if ascii_digits(value.removeprefix("-")) else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def token_answer(channel: HttpChannel, reply: HttpReply | Retry) -> tuple[IssuedToken | None, Any, int | None]:
    """A token endpoint's answer (WeChat's stable_token, WeCom's gettoken: one shape): the token it issued, or
    None with the body and its errcode for the endpoint's own table. TokenError with the batch's result when there
    is no answer to read (the request failed, or its HTTP status decides)."""
    if isinstance(reply, Retry):
        raise TokenError(reply)
    default = channel.classify(reply)
    if default is not None:
        raise TokenError(default)
    data = reply.json()
    code = errcode_of(data)
    if code == 0 and isinstance(data, dict) and data.get("access_token"):
        return IssuedToken(str(data["access_token"]), expires_in_of(data.get("expires_in"))), data, code
    return None, data, code


class WechatAccountChannel(HttpChannel):
    """One official account: token cache, the per-message send loop and the answer table above.

    Subclasses name the endpoint (``send_path``), the quota in Retry reasons (``quota_name``) and
    build each message's ``body``.
    """

    Options: ClassVar[type[ChannelOptions]] = WechatAccountOptions
    max_batch = 100
    send_path: ClassVar[str] = "/cgi-bin/message/template/send"
    quota_name: ClassVar[str] = "template-message"

    def batch_limit(self, seconds: float) -> int:
        """``max_batch``: messages go one after another (a 45009 stops the rest), so the pool-based limit of
        the HTTP layer does not describe this adapter."""
        del seconds
        return self.max_batch

    def __init__(
        self,
        alias: str,
        options: ChannelOptions | None = None,
        *,
        tokens: TokenCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(alias, options)
        self.tokens: TokenCache = tokens or MemoryTokenCache(self.fetch_token)
        self._wall_clock = wall_clock

    @property
    def opts(self) -> WechatAccountOptions:
        assert isinstance(self.options, WechatAccountOptions)
        return self.options

    def prepare(self, setup: ChannelSetup) -> None:
        self.use_token_caches(shared_token_caches(setup))

    def use_token_caches(self, caches: TokenCaches) -> None:
        """Share the process's token of this appid with the other aliases of the same account."""
        self.tokens = caches.get(f"wechat:{self.opts.appid}", self.fetch_token)

    async def fetch_token(self, force: bool) -> IssuedToken:
        """One call to stable_token; TokenError with the batch's result when it fails."""
        opts = self.opts
        body = {
            "grant_type": "client_credential",
            "appid": opts.appid,
            "secret": opts.secret.get_secret_value(),
            "force_refresh": force,
        }
        reply = await self.request("POST", f"{opts.api_base}/cgi-bin/stable_token", **utf8_json(body))
        token, data, code = token_answer(self, reply)
        if token is not None:
            return token
        if code in (-1, 45009, 45011) or code is None:
            raise TokenError(Retry(f"token endpoint: errcode {code}"))
        log.error("%s: stable_token refused: errcode %s", self.alias, code)
        raise TokenError(Failed("token", self._errmsg(data, code)))

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        try:
            token = await self.tokens.token()
        except TokenError as exc:
            return [exc.result] * len(batch)
        results: list[SendResult] = []
        refreshed = False
        stop: SendResult | None = None  # once set, the rest of the batch gets it without a call
        for message in batch:
            if stop is not None:
                results.append(stop)
                continue
            code, result = await self._send_one(token, message)
            if code in TOKEN_CODES and not refreshed:
                refreshed = True
                try:
                    token = await self.tokens.refresh(token)
                except TokenError as exc:
                    stop = exc.result
                    results.append(stop)
                    continue
                code, result = await self._send_one(token, message)
            if code in TOKEN_CODES:
                stop = Retry(f"access token rejected after a refresh (errcode {code})")
            elif code == 45009:
                stop = Retry(f"daily {self.quota_name} quota reached", seconds_until_quota_reset(self._wall_clock()))
                result = stop
            elif code == 45011:
                stop = result
            results.append(result)
        return results

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body of one message to ``send_path``."""
        raise NotImplementedError

    def data_values(self, message: OutboundMessage) -> dict[str, str]:
        """Template keyword -> value: ``fixed_data``, the subject under ``title_key``, the text under ``body_key``."""
        opts = self.opts
        values = dict(opts.fixed_data)
        if opts.title_key and message.subject:
            values[opts.title_key] = message.subject
        values[opts.body_key] = message.text
        return values

    def miniprogram(self, message: OutboundMessage) -> dict[str, str] | None:
        """The ``miniprogram`` field ({appid, pagepath} with the notice id filled in), if configured."""
        mini = self.opts.miniprogram
        if mini is None:
            return None
        return {"appid": mini.appid, "pagepath": mini.pagepath.replace("{notice_id}", str(message.notice_id))}

    async def _send_one(self, token: str, message: OutboundMessage) -> tuple[int | None, SendResult]:
        url = f"{self.opts.api_base}{self.send_path}"
        reply = await self.request("POST", url, params={"access_token": token}, **utf8_json(self.body(message)))
        code, result = self.interpret(reply, message)
        if not isinstance(result, Sent):
            log.info("%s: delivery %s: %s", self.alias, message.delivery_id, result)
        return code, result

    def interpret(self, reply: HttpReply | Retry, message: OutboundMessage) -> tuple[int | None, SendResult]:
        """The errcode (None when there is none) and the result of one send's answer for ``message``."""
        if isinstance(reply, Retry):
            return None, reply
        default = self.classify(reply)
        if default is not None:
            return None, default
        data = reply.json()
        code = errcode_of(data)
        if code is None:
            return None, Retry(f"unreadable answer from {self.send_path}")
        if code == 0:
            msgid = message_id_of(data.get("msgid")) if isinstance(data, dict) else None
            return 0, Sent(msgid) if msgid is not None else self.accepted_without_msgid(message)
        if code in TOKEN_CODES:
            return code, Retry(f"access token rejected (errcode {code})")
        if code in UNREACHABLE_CODES:
            return code, Failed("unreachable", self._errmsg(data, code))
        if code == 45011:
            return code, Retry("minute quota reached", 60.0)
        if code in (-1, 45009):
            return code, Retry(self._errmsg(data, code))
        return code, Failed(f"errcode-{code}", self._errmsg(data, code))

    def accepted_without_msgid(self, message: OutboundMessage) -> SendResult:
        """The result of errcode 0 without a usable msgid. template/send documents one in its answer, and its
        receipt (TEMPLATESENDJOBFINISH) names the message by it alone: the platform may have taken the message
        without saying which, ``Retry(UNRECOGNISED)``."""
        del message
        return Retry(UNRECOGNISED)

    def _errmsg(self, data: Any, code: int | None) -> str:
        message = data.get("errmsg", "") if isinstance(data, dict) else ""
        return self.redact(f"errcode {code}: {message}"[:200])


class WechatOfficialChannel(WechatAccountChannel):
    """Template messages (message/template/send)."""

    Options = WechatOfficialOptions

    def reports_delivery(self) -> bool:
        """TEMPLATESENDJOBFINISH reaches /hooks/wechat once the server URL's token is configured."""
        return self.opts.callback_token is not None

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        opts = self.opts
        assert isinstance(opts, WechatOfficialOptions)
        body: dict[str, Any] = {
            "touser": message.recipient,
            "template_id": opts.template_id,
            "data": {key: {"value": value} for key, value in self.data_values(message).items()},
            "client_msg_id": message.idempotency_key,
        }
        if opts.url:
            body["url"] = opts.url.replace("{notice_id}", str(message.notice_id))
        if message.confirm_url:
            body["url"] = message.confirm_url  # a tap confirms: the notice asks for it
        miniprogram = self.miniprogram(message)
        if miniprogram:
            body["miniprogram"] = miniprogram
        return body


__all__ = [
    "WechatAccountChannel",
    "WechatAccountOptions",
    "WechatOfficialChannel",
    "WechatOfficialOptions",
    "errcode_of",
    "seconds_until_quota_reset",
    "utf8_json",
]
