"""A fake WeCom (企业微信) application-message API on 127.0.0.1:0, answering like the platform.

Follows https://developer.work.weixin.qq.com/document/path/91039 (gettoken),
https://developer.work.weixin.qq.com/document/path/90236 (message/send) and the global codes
https://developer.work.weixin.qq.com/document/path/90455:

    GET  /cgi-bin/gettoken?corpid&corpsecret    {"errcode":0,"errmsg":"ok","access_token","expires_in"};
         the same token while it is valid; 40013 invalid corpid, 40001 invalid secret
    POST /cgi-bin/message/send?access_token     {"errcode":0,"errmsg":"ok","invaliduser","unlicenseduser","msgid"}
         41001 no token, 40014 invalid token, 42001 expired token, 47001 bad JSON, 40056 wrong agentid,
         40031 more than 1000 users, 81013 every user invalid; unknown users come back lower-cased in
         ``invaliduser``, users without a licence in ``unlicenseduser``; with ``enable_duplicate_check``
         the same request JSON within ``duplicate_check_interval`` seconds is not delivered twice.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_wechat import FakeClock, FakeServer, error, read_json


@dataclass
class FakeWecom(FakeServer):
    corpid: str = "ww0123456789abcdef"
    corpsecret: str = "agent-secret-0123456789"
    agentid: int = 1000002
    users: set[str] = field(default_factory=set)  # userids in the app's visible range (any case)
    unlicensed: set[str] = field(default_factory=set)  # visible but without an API licence
    clock: FakeClock = field(default_factory=FakeClock)
    expires_in: int = 7200
    scripted: list[int] = field(default_factory=list)  # errcodes for the next message/send calls
    received: list[dict[str, Any]] = field(default_factory=list)  # bodies of delivered calls
    delivered: dict[str, list[str]] = field(default_factory=dict)  # userid -> contents received
    token_calls: int = 0
    send_calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.current: str | None = None
        self._msgids = itertools.count(1)
        self._recent: dict[str, tuple[float, str]] = {}  # request JSON -> (when, msgid)
        self.app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        self.app.router.add_post("/cgi-bin/message/send", self.message_send)

    def expire_tokens(self) -> None:
        """WeCom "may invalidate a token early": every issued token now answers 42001."""
        for value in self.tokens:
            self.tokens[value] = self.clock()

    async def gettoken(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        if request.query.get("corpid") != self.corpid:
            return error(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.corpsecret:
            return error(40001, "invalid secret")
        now = self.clock()
        if self.current is None or self.tokens[self.current] <= now:
            self.current = secrets.token_urlsafe(24)
            self.tokens[self.current] = now + self.expires_in
        expires_in = int(self.tokens[self.current] - now)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self.current, "expires_in": expires_in}
        )

    async def message_send(self, request: web.Request) -> web.Response:
        self.send_calls += 1
        token = request.query.get("access_token")
        if not token:
            return error(41001, "access_token missing")
        if token not in self.tokens:
            return error(40014, "invalid access_token")
        if self.tokens[token] <= self.clock():
            return error(42001, "access_token expired")
        body = await read_json(request)
        if body is None:
            return error(47001, "data format error, Warning: wrong json format.")
        if self.scripted:
            code = self.scripted.pop(0)
            return error(code, "system busy" if code == -1 else f"scripted error {code}")
        if body.get("agentid") != self.agentid:
            return error(40056, "invalid agentid")
        touser = [u for u in str(body.get("touser", "")).split("|") if u]
        if len(touser) > 1000:
            return error(40031, "invalid UserID list")
        visible = {u.lower() for u in self.users}
        unlicensed = {u.lower() for u in self.unlicensed}
        invalid = [u.lower() for u in touser if u.lower() not in visible]
        blocked = [u.lower() for u in touser if u.lower() in unlicensed and u.lower() in visible]
        if len(invalid) + len(blocked) == len(touser):
            return error(81013, "user & party & tag all invalid")
        return self._deliver(body, touser, invalid, blocked)

    def _deliver(self, body: dict[str, Any], touser: list[str], invalid: list[str], blocked: list[str]) -> web.Response:
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
        interval = int(body.get("duplicate_check_interval") or 1800)
        seen = self._recent.get(canonical)
        if body.get("enable_duplicate_check") == 1 and seen and self.clock() - seen[0] < interval:
            msgid = seen[1]  # the same request within the interval is not delivered again
        else:
            msgid = f"msg-{next(self._msgids)}"
            self._recent[canonical] = (self.clock(), msgid)
            self.received.append(body)
            content = json.dumps(body.get(body.get("msgtype", "")), ensure_ascii=False)
            for user in touser:
                if user.lower() not in invalid and user.lower() not in blocked:
                    self.delivered.setdefault(user.lower(), []).append(content)
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        if blocked:
            answer["unlicenseduser"] = "|".join(blocked)
        return web.json_response(answer)
