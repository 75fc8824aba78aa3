"""WeCom (企业微信) application messages to village staff and residents in the county's WeCom, by userid.

API: ``POST {api_base}/cgi-bin/message/send?access_token=...``
(https://developer.work.weixin.qq.com/document/path/90236) with ``touser`` = "a|b|c" (at most 1000
userids per call), ``agentid``, ``msgtype`` text / markdown / textcard, ``enable_duplicate_check`` and
``duplicate_check_interval`` (the same request JSON within the interval is not delivered twice). The
token comes from ``GET /cgi-bin/gettoken?corpid&corpsecret`` (https://developer.work.weixin.qq.com/document/path/91039),
one per application secret, through a ``TokenCache``. Codes: https://developer.work.weixin.qq.com/document/path/90455 .

Messages of a batch with the same content share one call; each message still gets its own result:

    answer                                       result
    -------------------------------------------  ------------------------------------------------
    errcode 0 + msgid                            Sent(msgid) for every listed user, except:
      user in ``invaliduser`` (lower-cased)       Failed("unreachable", "invaliduser")  (not visible to the app)
      user in ``unlicenseduser``                  Failed("unreachable", "unlicenseduser") (no API licence)
      (each documented as one "a|b" string; a JSON list ["a", "b"], seen from proxies, is read too)
    errcode 0, either user list unreadable       Retry(UNRECOGNISED) for every user: who was refused cannot be
      (not a string, a list of strings or null)    told, and a refused user must not be counted as reached
    errcode 0 without a usable msgid             Retry(UNRECOGNISED) for every user (WeCom may have taken the
      (missing, empty, null, a list...)            message; the documented answer has a msgid), except those
                                                 in the two lists above: Failed as there
    40014 / 42001 (token invalid / expired)      refresh once per send, repeat that call; again -> Retry
    81013 all users invalid, 40003 bad userid    Failed("unreachable") for the call's users
    45009 frequency limit                        Retry(retry_after=60) for this and the rest of the batch
    -1 busy, 6000 version conflict, 45033 concurrency   Retry
    other errcodes (40056 agentid, 40001 secret...)     Failed("errcode-<n>", errmsg)
    no errcode, or one not an integer            Retry (the platform may have taken the messages)
    transport error / HTTP 5xx / 429             Retry (channels.http)
    token fetch fails                            its Retry / Failed("token") for the whole batch

The users of one call share its msgid: WeCom gives one a call (message/recall takes it back from all of them)
and pushes no delivery receipts, so no receipt is ever matched by it.
Per member, WeCom silently drops more than 30 messages a minute (1000 an hour): nothing to detect here.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

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
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions
from channels.wechat_official import errcode_of, token_answer, utf8_json
from channels.wechat_token import (
    IssuedToken,
    MemoryTokenCache,
    TokenCache,
    TokenCaches,
    TokenError,
    shared_token_caches,
)

log = logging.getLogger("notifier.channels.wecom_app")

TOKEN_CODES = frozenset({40014, 42001})
UNREACHABLE_CODES = frozenset({40003, 81013})
RETRY_CODES = frozenset({-1, 6000, 45033})
MAX_USERS = 1000


class WecomAppOptions(HttpOptions):
    corpid: str
    corpsecret: SecretStr  # the application's own secret
    agentid: int
    api_base: str = "https://qyapi.weixin.qq.com"
    msgtype: Literal["text", "markdown", "textcard"] = "text"
    card_url: str | None = None  # textcard: the page a tap opens (required for textcard)
    card_button: str | None = Field(None, max_length=4)  # textcard button text, WeCom's default "详情"
    safe: bool = False  # confidential message (no forwarding)
    enable_duplicate_check: bool = True
    duplicate_check_interval: int = Field(1800, ge=1)

    @model_validator(mode="after")
    def _card_needs_url(self) -> WecomAppOptions:
        if self.msgtype == "textcard" and not self.card_url:
            raise ValueError("card_url is required when msgtype is textcard")
        return self


class WecomAppChannel(HttpChannel):
    Options = WecomAppOptions
    max_batch = MAX_USERS
    messages_per_request = MAX_USERS  # one message/send call per text

    def __init__(self, alias: str, options: ChannelOptions | None = None, *, tokens: TokenCache | None = None) -> None:
        super().__init__(alias, options)
        self.tokens: TokenCache = tokens or MemoryTokenCache(self.fetch_token, can_force=False)

    @property
    def opts(self) -> WecomAppOptions:
        assert isinstance(self.options, WecomAppOptions)
        return self.options

    def prepare(self, setup: ChannelSetup) -> None:
        self.use_token_caches(shared_token_caches(setup))

    def use_token_caches(self, caches: TokenCaches) -> None:
        """Share the process's token of this application with other aliases of the same app."""
        key = f"wecom:{self.opts.corpid}:{self.opts.agentid}"
        self.tokens = caches.get(key, self.fetch_token, can_force=False)

    async def fetch_token(self, force: bool) -> IssuedToken:
        """One call to gettoken (which has no force switch); TokenError with the batch's result on failure."""
        opts = self.opts
        params = {"corpid": opts.corpid, "corpsecret": opts.corpsecret.get_secret_value()}
        reply = await self.request("GET", f"{opts.api_base}/cgi-bin/gettoken", params=params)
        token, data, code = token_answer(self, reply)
        if token is not None:
            return token
        if code is None or code in RETRY_CODES or code == 45009:
            raise TokenError(Retry(f"gettoken: errcode {code}", 60.0 if code == 45009 else None))
        log.error("%s: gettoken refused: errcode %s", self.alias, code)
        raise TokenError(Failed("token", self._errmsg(data, code)))

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        if not batch:
            return []
        results: list[SendResult | None] = [None] * len(batch)
        groups: dict[str, list[int]] = {}
        for index, message in enumerate(batch):
            groups.setdefault(repr((message.subject, message.text)), []).append(index)
        try:
            token = await self.tokens.token()
        except TokenError as exc:
            return [exc.result] * len(batch)
        refreshed = False
        stop: SendResult | None = None
        for indexes in groups.values():
            for start in range(0, len(indexes), MAX_USERS):
                chunk = [batch[i] for i in indexes[start : start + MAX_USERS]]
                if stop is None:
                    code, data = await self._call(token, chunk)
                    if code in TOKEN_CODES and not refreshed:
                        refreshed = True
                        try:
                            token = await self.tokens.refresh(token)
                        except TokenError as exc:
                            stop = exc.result
                        else:
                            code, data = await self._call(token, chunk)
                    stop = stop or self._pause(code)
                chunk_results = [stop] * len(chunk) if stop is not None else self.interpret(code, data, chunk)
                for i, result in zip(indexes[start : start + MAX_USERS], chunk_results, strict=True):
                    results[i] = result
        return [r if r is not None else Retry("not attempted") for r in results]

    def _pause(self, code: int | None) -> Retry | None:
        """The result for the rest of the batch after an answer that stops sending, else None."""
        if code in TOKEN_CODES:
            return Retry(f"access token rejected after a refresh (errcode {code})")
        if code == 45009:
            return Retry("api frequency limit reached (errcode 45009)", 60.0)
        return None

    def body(self, sample: OutboundMessage, users: list[str]) -> dict[str, Any]:
        opts = self.opts
        body: dict[str, Any] = {"touser": "|".join(users), "agentid": opts.agentid, "msgtype": opts.msgtype}
        if opts.msgtype == "textcard":
            card = {"title": sample.subject or sample.text.split("\n", 1)[0], "description": sample.text}
            card["url"] = opts.card_url or ""
            if opts.card_button:
                card["btntxt"] = opts.card_button
            body["textcard"] = card
        elif opts.msgtype == "markdown":
            heading = f"**{sample.subject}**\n" if sample.subject else ""
            body["markdown"] = {"content": heading + sample.text}
        else:
            heading = f"{sample.subject}\n" if sample.subject else ""
            body["text"] = {"content": heading + sample.text}
        body["safe"] = int(opts.safe)
        body["enable_duplicate_check"] = int(opts.enable_duplicate_check)
        body["duplicate_check_interval"] = opts.duplicate_check_interval
        return body

    async def _call(self, token: str, chunk: list[OutboundMessage]) -> tuple[int | None, Any]:
        """(errcode, answer) of one message/send; errcode None and a Retry/Failed when there is no answer."""
        url = f"{self.opts.api_base}/cgi-bin/message/send"
        body = self.body(chunk[0], list(dict.fromkeys(m.recipient for m in chunk)))
        reply = await self.request("POST", url, params={"access_token": token}, **utf8_json(body))
        if isinstance(reply, Retry):
            return None, reply
        default = self.classify(reply)
        if default is not None:
            return None, default
        data = reply.json()
        code = errcode_of(data) if isinstance(data, dict) and "errcode" in data else None  # message/send always has one
        return code, data if code is not None else Retry("unreadable answer from message/send")

    def interpret(self, code: int | None, data: Any, chunk: list[OutboundMessage]) -> list[SendResult]:
        """One result per message of a call, from its errcode and answer."""
        if code is None:
            return [data] * len(chunk)
        if code == 0:
            invalid = _users(data.get("invaliduser"))
            unlicensed = _users(data.get("unlicenseduser"))
            if invalid is None or unlicensed is None:
                log.warning("%s: message/send for %d users: its refused users unreadable", self.alias, len(chunk))
                return [Retry(UNRECOGNISED)] * len(chunk)
            msgid = message_id_of(data.get("msgid"))
            sent: SendResult = Sent(msgid) if msgid is not None else Retry(UNRECOGNISED)
            results: list[SendResult] = []
            for message in chunk:
                user = message.recipient.lower()
                if user in invalid or user in unlicensed:
                    list_name = "invaliduser" if user in invalid else "unlicenseduser"
                    results.append(Failed("unreachable", list_name))
                    log.info("%s: delivery %s: user in %s", self.alias, message.delivery_id, list_name)
                else:
                    results.append(sent)
            return results
        log.info("%s: message/send for %d users: errcode %s", self.alias, len(chunk), code)
        if code in UNREACHABLE_CODES:
            result: SendResult = Failed("unreachable", self._errmsg(data, code))
        elif code in RETRY_CODES or code in TOKEN_CODES:
            result = Retry(self._errmsg(data, code))
        else:
            result = Failed(f"errcode-{code}", self._errmsg(data, code))
        return [result] * len(chunk)

    def _errmsg(self, data: Any, code: int | None) -> str:
        message = str(data.get("errmsg", "")) if isinstance(data, dict) else ""
        return self.redact(f"errcode {code}: {message}"[:200])


def _users(value: Any) -> set[str] | None:
    """The userids (lower-cased) an answer's ``invaliduser`` or ``unlicenseduser`` names: documented as one string
    "a|b", sent by some proxies as a JSON list ["a", "b"]; none when it is missing, null or empty. None when it is
    anything else (a number, an object, a list of other things): it cannot be read."""
    if value is None:
        return set()
    if isinstance(value, str):
        names = value.split("|")
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = [part for name in value for part in name.split("|")]
    else:
        return None
    return {name.strip().lower() for name in names if name.strip()}


__all__ = ["WecomAppChannel", "WecomAppOptions"]
