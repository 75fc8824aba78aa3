"""Fake group-bot webhooks (WeCom robot, DingTalk custom robot, Feishu custom bot) on 127.0.0.1:0.

Each follows its published API, checks the documented signature and enforces the documented rate:

    WeCom   POST /cgi-bin/webhook/send?key=KEY     https://developer.work.weixin.qq.com/document/path/91770
            {"errcode":0,"errmsg":"ok"}; 93000 unknown key; 20 messages a minute per robot, then 45009
            (the over-limit code is reported, not confirmed by the official page)
    DingTalk POST /robot/send?access_token=T[&timestamp=MS&sign=S]
            https://open.dingtalk.com/document/robots/customize-robot-security-settings
            sign = urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}"))), timestamp in ms
            within one hour; 300001 unknown token, 310000 "sign not match"; 20 a minute per robot, then
            130101 "send too fast" and the robot stays throttled for 10 minutes
    Feishu  POST /open-apis/bot/v2/hook/{hook_id}  https://open.larkoffice.com/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN.md
            {"timestamp": "<s>", "sign": base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))} in the body;
            {"code":0,"msg":"success",...}; 19021 bad signature or timestamp, 9499 bad body or > 20 KB,
            19001 unknown hook (observed, not in the reference); 100 a minute and 5 a second per bot, then 11232

Sliding 60-second windows over a scripted ``FakeClock`` (in seconds); ``posts`` records what each robot got.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_wechat import FakeClock, FakeServer, error, read_json


@dataclass
class RateWindow:
    """Accepted message times per robot; ``full`` when ``limit`` were accepted within ``period`` seconds."""

    limit: int
    period: float = 60.0
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def full(self, robot: str, now: float) -> bool:
        recent = [t for t in self.times[robot] if now - t < self.period]
        self.times[robot] = recent
        return len(recent) >= self.limit

    def add(self, robot: str, now: float) -> None:
        self.times[robot].append(now)


@dataclass
class FakeWecomBot(FakeServer):
    keys: set[str] = field(default_factory=set)
    clock: FakeClock = field(default_factory=FakeClock)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.window = RateWindow(20)
        self.app.router.add_post("/cgi-bin/webhook/send", self.send)

    async def send(self, request: web.Request) -> web.Response:
        self.calls += 1
        key = request.query.get("key", "")
        if key not in self.keys:
            return error(93000, "invalid webhook url, hint: [fake]")
        body = await read_json(request)
        if body is None:
            return error(40035, "invalid parameter, Warning: wrong json format.")
        if self.window.full(key, self.clock()):
            return error(45009, "api freq out of limit")
        msgtype = body.get("msgtype")
        content = (body.get(msgtype) or {}).get("content", "") if msgtype in ("text", "markdown") else ""
        limit = 2048 if msgtype == "text" else 4096
        if not content or len(content.encode("utf-8")) > limit:
            return error(40058, f"{msgtype}.content exceed max length {limit}")  # code not confirmed
        self.window.add(key, self.clock())
        self.posts[key].append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """The documented steps, written out independently of the adapter (without the final urlencode)."""
    string_to_sign = f"{timestamp}\n{secret}"
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass
class FakeDingtalk(FakeServer):
    robots: dict[str, str | None] = field(default_factory=dict)  # access_token -> signing secret (None: no 加签)
    clock: FakeClock = field(default_factory=FakeClock)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    raw_queries: list[str] = field(default_factory=list)
    calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.window = RateWindow(20)
        self.throttled_until: dict[str, float] = {}
        self.app.router.add_post("/robot/send", self.send)

    async def send(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.raw_queries.append(request.rel_url.raw_query_string)
        token = request.query.get("access_token", "")
        if token not in self.robots:
            return error(300001, "token is not exist")
        secret = self.robots[token]
        if secret is not None and not self._signed(request, secret):
            return error(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
        body = await read_json(request)
        if body is None:
            return error(40035, "缺少参数 json")  # code not confirmed
        now = self.clock()
        if self.throttled_until.get(token, 0) <= now and self.window.full(token, now):
            self.throttled_until[token] = now + 600  # over the limit: throttled for 10 minutes
        if self.throttled_until.get(token, 0) > now:
            return error(130101, "send too fast, exceed 20 times per minute")
        self.window.add(token, now)
        self.posts[token].append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _signed(self, request: web.Request, secret: str) -> bool:
        # read from the raw query: the Base64 must arrive URL-encoded (a bare "+" would read as a space)
        query = dict(urllib.parse.parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        if not timestamp.isdigit() or abs(self.clock() * 1000 - int(timestamp)) > 3_600_000:
            return False
        return hmac.compare_digest(sign, dingtalk_expected_sign(secret, timestamp))


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    """The documented steps, independently of the adapter: the key is the string to sign, the message empty."""
    string_to_sign = f"{timestamp}\n{secret}"
    return base64.b64encode(hmac.new(string_to_sign.encode("utf-8"), b"", hashlib.sha256).digest()).decode()


@dataclass
class FakeFeishu(FakeServer):
    hooks: dict[str, str | None] = field(default_factory=dict)  # hook id -> signing secret (None: unsigned)
    clock: FakeClock = field(default_factory=FakeClock)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.minute = RateWindow(100)
        self.second = RateWindow(5, period=1.0)
        self.app.router.add_post("/open-apis/bot/v2/hook/{hook_id}", self.send)

    @staticmethod
    def answer(code: int, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": {}})

    async def send(self, request: web.Request) -> web.Response:
        self.calls += 1
        hook = request.match_info["hook_id"]
        if hook not in self.hooks:
            return self.answer(19001, "param invalid: incoming webhook access token invalid")
        raw = await request.read()
        body = await read_json(request)
        if body is None or len(raw) > 20 * 1024 or body.get("msg_type") not in ("text", "post", "interactive"):
            return self.answer(9499, "Bad Request")
        secret = self.hooks[hook]
        if secret is not None:
            timestamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            fresh = timestamp.isdigit() and abs(self.clock() - int(timestamp)) <= 3600
            if not fresh or not hmac.compare_digest(sign, feishu_expected_sign(secret, timestamp)):
                return self.answer(19021, "sign match fail or timestamp is not within one hour from current time")
        now = self.clock()
        if self.minute.full(hook, now) or self.second.full(hook, now):
            return self.answer(11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]")
        self.minute.add(hook, now)
        self.second.add(hook, now)
        self.posts[hook].append(body)
        return web.json_response({"code": 0, "msg": "success", "data": {}, "Extra": None, "StatusCode": 0,
                                  "StatusMessage": "success"})
