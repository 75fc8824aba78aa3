"""A fake WeChat Official Account API: a real aiohttp app on 127.0.0.1:0 that answers like the platform.

Follows the published API (https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken,
https://developers.weixin.qq.com/doc/service/en/api/notify/template/api_sendtemplatemessage.html and the
common error codes https://developers.weixin.qq.com/doc/store/API/basics/commErrCode.html):

    POST /cgi-bin/stable_token              {"access_token", "expires_in"} or 40013 / 40001 / 47001
    POST /cgi-bin/message/template/send     {"errcode": 0, "errmsg": "ok", "msgid": <int64>} or
        41001 no token, 40001 unknown / not latest token, 42001 expired token, 47001 bad JSON,
        45009 daily quota reached, 40037 bad template, 40003 invalid openid, 43004 not following,
        47003 empty template value; scripted errcodes (e.g. -1) come first when queued.
    POST /cgi-bin/message/subscribe/bizsend  subscribe notifications
        (https://developers.weixin.qq.com/doc/service/api/notify/notify/api_sendnewsubscribemsg.html):
        the same token, quota and scripted answers; then 40037 bad template, 40003 unknown openid,
        47003 data missing / empty / longer than its keyword type allows (thing 20, phrase 5, ...),
        43101 when the user has no subscription left (never subscribed, or used the one-time quota);
        an accepted message uses one of the user's ``subscriptions`` and is answered ``{"errcode": 0, "errmsg": "ok"}``
        (bizsend answers no msgid).

Time is a scripted ``FakeClock``; a token can also be made to expire after N template sends, so a test
can expire it in the middle of a batch. ``FakeServer`` and ``FakeClock`` are shared by the other fakes.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass
class FakeClock:
    """Seconds, moved by the test: ``clock.advance(7200)`` instead of sleeping."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeServer:
    """A real aiohttp app on 127.0.0.1 and a free port; ``async with`` starts and stops it."""

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, access_log=None)  # its log would hold tokens
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def error(code: int, message: str) -> web.Response:
    """The platform's error shape: HTTP 200 with errcode and errmsg."""
    return web.json_response({"errcode": code, "errmsg": message})


async def read_json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# Longest value per subscribe keyword type (the keyword name without its number); "name" is 10 Chinese
# characters or 20 letters. Types not listed (time, date, amount) are format-checked by WeChat, not here.
SUBSCRIBE_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "phrase": 5,
}


def subscribe_limit(key: str, value: str) -> int:
    kind = key.rstrip("0123456789")
    if kind == "name":
        return 20 if value.isascii() else 10
    return SUBSCRIBE_LIMITS.get(kind, 10_000)


@dataclass
class IssuedToken:
    value: str
    expires_at: float
    sends_left: int | None = None  # expires after this many template sends, if set


@dataclass
class FakeWechat(FakeServer):
    appid: str = "wx0123456789abcdef"
    secret: str = "app-secret-0123456789"
    template_id: str = "tpl-flood-warning"
    followers: set[str] = field(default_factory=set)  # openids that follow the account
    former_followers: set[str] = field(default_factory=set)  # valid openids that unfollowed: 43004
    clock: FakeClock = field(default_factory=FakeClock)
    expires_in: int = 7200
    expire_after_sends: int | None = None  # each issued token expires after this many sends
    daily_quota: int | None = None  # accepted template messages per day; then 45009
    scripted: list[int] = field(default_factory=list)  # errcodes for the next template sends
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted bodies
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    send_calls: int = 0
    subscriptions: dict[str, int] = field(default_factory=dict)  # openid -> subscribe messages it still accepts

    def __post_init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, IssuedToken] = {}
        self.latest: IssuedToken | None = None
        self._msgids = itertools.count(3_487_542_469_355_618_313)  # 19 digits: beyond a JS double
        self._dedup: dict[tuple[str, str], tuple[float, int]] = {}
        self.app.router.add_post("/cgi-bin/stable_token", self.stable_token)
        self.app.router.add_post("/cgi-bin/message/template/send", self.template_send)
        self.app.router.add_post("/cgi-bin/message/subscribe/bizsend", self.subscribe_send)

    def _issue(self) -> IssuedToken:
        token = IssuedToken(secrets.token_urlsafe(24), self.clock() + self.expires_in, self.expire_after_sends)
        self.tokens[token.value] = token
        self.latest = token
        return token

    async def stable_token(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if body is None:
            return error(47001, "data format error")
        self.token_requests.append(body)
        if body.get("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        if body.get("appid") != self.appid:
            return error(40013, "invalid appid")
        if body.get("secret") != self.secret:
            return error(40001, "invalid credential, access_token is invalid or not latest")
        now = self.clock()
        current = self.latest
        # Normal mode hands out the current token until 5 minutes before expiry (old and new then both work).
        if body.get("force_refresh") or current is None or current.expires_at - now < 300 or current.sends_left == 0:
            current = self._issue()
        return web.json_response({"access_token": current.value, "expires_in": int(current.expires_at - now)})

    def _check_token(self, request: web.Request) -> web.Response | IssuedToken:
        value = request.query.get("access_token")
        if not value:
            return error(41001, "access_token missing")
        token = self.tokens.get(value)
        if token is None:
            return error(40001, "invalid credential, access_token is invalid or not latest")
        if token.expires_at <= self.clock() or token.sends_left == 0:
            return error(42001, "access_token expired")
        return token

    async def _common_checks(self, request: web.Request) -> web.Response | dict[str, Any]:
        """Token, JSON, daily quota and scripted answers, shared by both send endpoints."""
        self.send_calls += 1
        token = self._check_token(request)
        if isinstance(token, web.Response):
            return token
        if token.sends_left is not None:
            token.sends_left -= 1
        body = await read_json(request)
        if body is None:
            return error(47001, "data format error")
        if self.daily_quota is not None and len(self.received) >= self.daily_quota:
            return error(45009, "reach max api daily quota limit")
        if self.scripted:
            code = self.scripted.pop(0)
            return error(code, "system error" if code == -1 else f"scripted error {code}")
        return body

    async def template_send(self, request: web.Request) -> web.Response:
        body = await self._common_checks(request)
        if isinstance(body, web.Response):
            return body
        if body.get("template_id") != self.template_id:
            return error(40037, "invalid template_id")
        openid = body.get("touser")
        if openid in self.former_followers:
            return error(43004, "require subscribe")
        if openid not in self.followers:
            return error(40003, "invalid openid")
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            return error(47003, "argument invalid! data is empty")
        for key, item in data.items():
            if not isinstance(item, dict) or not str(item.get("value", "")).strip():
                return error(47003, f"argument invalid! data.{key}.value is empty")
        return self._accept(body)

    async def subscribe_send(self, request: web.Request) -> web.Response:
        body = await self._common_checks(request)
        if isinstance(body, web.Response):
            return body
        if body.get("template_id") != self.template_id:
            return error(40037, "invalid template_id")
        openid = body.get("touser")
        known = self.followers | self.former_followers | set(self.subscriptions)
        if not isinstance(openid, str) or openid not in known:
            return error(40003, "invalid openid")
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            return error(47003, "argument invalid! data is empty")
        for key, item in data.items():
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value.strip():
                return error(47003, f"argument invalid! data.{key}.value is empty")
            if len(value) > subscribe_limit(key, value):
                return error(47003, f"argument invalid! data.{key}.value invalid")
        if self.subscriptions.get(openid, 0) <= 0:
            return error(43101, "user refuse to accept the msg")
        self.subscriptions[openid] -= 1
        self.received.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})  # no msgid: bizsend documents none

    def _accept(self, body: dict[str, Any]) -> web.Response:
        key = (str(body["touser"]), str(body.get("client_msg_id") or ""))
        seen = self._dedup.get(key)
        if key[1] and seen is not None and self.clock() - seen[0] < 600:
            msgid = seen[1]  # same openid + client_msg_id within 10 minutes: sent only once
        else:
            msgid = next(self._msgids)
            self.received.append(body)
            if key[1]:
                self._dedup[key] = (self.clock(), msgid)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
