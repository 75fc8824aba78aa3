"""A fake Aliyun Dysms endpoint (API 2017-05-25, RPC style): a real aiohttp app on 127.0.0.1:0.

Modelled on https://help.aliyun.com/document_detail/55284.html (SendSms),
https://help.aliyun.com/document_detail/101346.html (error codes) and the RPC signature of
https://help.aliyun.com/document_detail/28839.html . Every request is checked as Aliyun does:
required common parameters, a known AccessKeyId, the HMAC-SHA1 signature recomputed from the
received parameters (query + form body) with the known secret, and a nonce used only once; then the
SendSms parameters (approved SignName and TemplateCode, TemplateParam a JSON object of strings with
every template variable, at most 1000 numbers, each a mainland mobile number). The signature is
recomputed here independently of ``channels.aliyun_sms``, so a bug there cannot vouch for itself.

Gateway errors answer with HTTP 400/404 and ``{"RequestId", "HostId", "Code", "Message", "Recommend"}``;
business errors with HTTP 200 and ``{"Code", "Message", "RequestId"}``; success with
``{"Code": "OK", "Message": "OK", "BizId", "RequestId"}``. Scripts: ``throttled`` numbers answer
isv.BUSINESS_LIMIT_CONTROL, ``illegal`` numbers isv.MOBILE_NUMBER_ILLEGAL, ``balance`` (messages the
account can still pay for) isv.AMOUNT_NOT_ENOUGH once spent, ``http_errors`` makes the next requests
answer with those HTTP statuses (an HTML page, as from a load balancer), ``api_throttled`` the next
requests Throttling.User.

Residents' replies: ``sms_up`` builds the SmsUp push of the HTTP batch push mode exactly as
https://help.aliyun.com/zh/sms/developer-reference/smsup-http (document 101847) shows it (a JSON array of
``phone_number``, ``content``, ``send_time``, ``dest_code``, ``sequence_id``), and ``push`` POSTs it as the
platform does (``application/json``, UTF-8) to the URL configured in the console, returning the answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

HOST_ID = "dysmsapi.aliyuncs.com"
MAX_NUMBERS = 1000
COMMON = ("Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp",
          "Signature")
MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")


@dataclass
class Accepted:
    """One message the fake accepted: the number, the parameters it came with, its BizId."""

    phone: str
    params: dict[str, str]
    biz_id: str


@dataclass
class FakeAliyun:
    access_keys: dict[str, str] = field(default_factory=lambda: {"LTAI-test-id": "test-secret"})
    sign_names: set[str] = field(default_factory=lambda: {"昌乐县政府"})
    templates: dict[str, set[str]] = field(default_factory=lambda: {"SMS_100000001": {"content"}})
    throttled: dict[str, str] = field(default_factory=dict)  # number -> Message, e.g. "触发分钟级流控Permits:1"
    illegal: set[str] = field(default_factory=set)  # well-formed numbers the carrier does not know
    balance: int | None = None  # None: unlimited
    http_errors: list[int] = field(default_factory=list)
    api_throttled: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)  # every request's parameters, as received
    accepted: list[Accepted] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    url: str = ""
    _server: TestServer | None = None
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1234567890))

    def sms_up(self, phone: str, content: str, *, dest_code: str = "1234") -> dict[str, str]:
        """One entry of an SmsUp push (document 101847): a reply from ``phone`` (11 digits, no +86)."""
        return {
            "phone_number": phone.removeprefix("+86"),
            "content": content,
            "send_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "dest_code": dest_code,
            "sequence_id": str(next(self._sequence)),
        }

    async def push(self, url: str, entries: list[dict[str, str]]) -> tuple[int, Any]:
        """POST a push (a JSON array) to a receiver, as the platform's HTTP batch push does."""
        data = json.dumps(entries, ensure_ascii=False).encode("utf-8")
        async with aiohttp.ClientSession() as session, session.post(
            url, data=data, headers={"Content-Type": "application/json;charset=utf-8"}
        ) as response:
            body = await response.text()
            return response.status, json.loads(body) if response.content_type.endswith("json") else body

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/", self.handle)
        return app

    async def __aenter__(self) -> FakeAliyun:
        self._server = TestServer(self.app(), host="127.0.0.1", port=0)
        await self._server.start_server()
        self.url = str(self._server.make_url("/"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    def receipts(self, *, failed: Collection[str] = ()) -> list[dict[str, Any]]:
        """An SmsReport push (doc 101867) for every accepted message; numbers in ``failed`` undelivered."""
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": a.phone,
                "send_time": now,
                "report_time": now,
                "success": a.phone not in failed,
                "err_code": "MK:0001" if a.phone in failed else "DELIVERED",
                "err_msg": "用户关机" if a.phone in failed else "用户接收成功",
                "sms_size": "1",
                "biz_id": a.biz_id,
                "out_id": a.params.get("OutId", ""),
            }
            for a in self.accepted
        ]

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        self.requests.append(params)
        if self.http_errors:
            status = self.http_errors.pop(0)  # as a load balancer in front of the API answers: no JSON
            page = f"<html><body><h1>{status}</h1></body></html>"
            return web.Response(status=status, text=page, content_type="text/html")
        refusal = self.check_common(request.method, params)
        if refusal is not None:
            return refusal
        if self.api_throttled > 0:
            self.api_throttled -= 1
            return gateway_error(400, "Throttling.User", "Request was denied due to user flow control.")
        if params["Action"] != "SendSms":
            return gateway_error(404, "InvalidAction.NotFound", f"Specified api is not found: {params['Action']}")
        return self.send_sms(params)

    def check_common(self, method: str, params: dict[str, str]) -> web.Response | None:
        for name in COMMON:
            if not params.get(name):
                return gateway_error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if params["Version"] != "2017-05-25":
            return gateway_error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return gateway_error(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", params["Timestamp"]):
            return gateway_error(400, "InvalidTimeStamp.Format", "Specified time stamp does not match the format.")
        secret = self.access_keys.get(params["AccessKeyId"])
        if secret is None:
            return gateway_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if expected_signature(params, secret, method) != params["Signature"]:
            message = "Specified signature is not matched with our calculation."
            return gateway_error(400, "SignatureDoesNotMatch", message)
        if params["SignatureNonce"] in self.nonces:
            return gateway_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(params["SignatureNonce"])
        return None

    def send_sms(self, params: dict[str, str]) -> web.Response:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return gateway_error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        numbers = params["PhoneNumbers"].split(",")
        if len(numbers) > MAX_NUMBERS:
            return business_error("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if params["SignName"] not in self.sign_names:
            return business_error("isv.SMS_SIGNATURE_ILLEGAL", "短信签名不合法")
        variables = self.templates.get(params["TemplateCode"])
        if variables is None:
            return business_error("isv.SMS_TEMPLATE_ILLEGAL", "短信模板不合法")
        try:
            values = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return business_error("isv.INVALID_JSON_PARAM", "JSON参数不合法,只接受字符串值")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return business_error("isv.INVALID_JSON_PARAM", "JSON参数不合法,只接受字符串值")
        if not variables <= values.keys():
            return business_error("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        phones = [MOBILE.fullmatch(n.strip()) for n in numbers]
        if any(m is None or m.group(1) in self.illegal for m in phones):
            return business_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        national = [m.group(1) for m in phones if m is not None]
        for phone in national:
            if phone in self.throttled:
                return business_error("isv.BUSINESS_LIMIT_CONTROL", self.throttled[phone])
        if self.balance is not None:
            if self.balance < len(national):
                return business_error("isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
            self.balance -= len(national)
        biz_id = f"{len(self.requests):012d}{uuid.uuid4().int % 10**6:06d}^0"
        self.accepted.extend(Accepted(phone, params, biz_id) for phone in national)
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": _request_id()})


def expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    """The signature as the server computes it (written apart from the adapter's on purpose)."""

    def encode(value: str) -> str:  # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay
        return "".join(c if c.isascii() and (c.isalnum() or c in "-_.~") else quote(c, safe="") for c in value)

    pairs = sorted((encode(k), encode(v)) for k, v in params.items() if k != "Signature")
    to_sign = method + "&" + encode("/") + "&" + encode("&".join(f"{k}={v}" for k, v in pairs))
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def business_error(code: str, message: str) -> web.Response:
    return web.json_response({"Code": code, "Message": message, "RequestId": _request_id()})


def gateway_error(status: int, code: str, message: str) -> web.Response:
    body = {"RequestId": _request_id(), "HostId": HOST_ID, "Code": code, "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"}
    return web.json_response(body, status=status)


def _request_id() -> str:
    return str(uuid.uuid4()).upper()
