"""A fake Tencent Cloud SMS endpoint (API 3.0 SendSms, 2021-01-11): a real aiohttp app on 127.0.0.1:0.

Modelled on https://cloud.tencent.com/document/api/382/55981 (SendSms), the error codes of
https://cloud.tencent.com/document/api/382/59177 and https://cloud.tencent.com/document/api/382/38780,
and the TC3-HMAC-SHA256 signature of https://cloud.tencent.com/document/api/213/30654 . Every request
is checked as Tencent does: a well-formed ``Authorization`` with a known SecretId, a timestamp within
5 minutes, ``content-type`` and ``host`` among the signed headers, and the signature recomputed here
from the received headers and raw body with the known SecretKey (independently of
``channels.tencent_sms``); then X-TC-Action/Version/Region, the body parameters, at most 200 numbers.

All answers are HTTP 200: ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` for a refused
request, else ``{"Response": {"SendStatusSet": [...], "RequestId"}}`` with one status per number
(``Code`` "Ok" and a ``SerialNo``, or the number's own error with ``SerialNo`` "" and ``Fee`` 0).
Scripts: ``number_codes`` gives a number its error code, ``request_errors`` refuses the next requests
whole (e.g. RequestLimitExceeded), ``http_errors`` answers the next ones with a bare HTTP status,
``balance`` is how many messages the SMS package still pays for.

Residents' replies: ``reply`` builds the SMS reply callback exactly as
https://cloud.tencent.com/document/api/382/59179 (English: https://www.tencentcloud.com/document/product/382/
43548) shows it (one JSON object: ``extend``, ``mobile``, ``nationcode``, ``sign``, ``text``, ``time`` in Unix
seconds), and ``push`` POSTs it as the platform does to the callback URL configured in the console,
returning the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.sms_text import count_segments

MAX_NUMBERS = 200
AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
MESSAGES = {
    "Ok": "send success",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of sms messages sent from a single mobile number every day "
    "exceeds the upper limit",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of sms messages sent from a single mobile number "
    "within 30 seconds exceeds the upper limit",
    "FailedOperation.PhoneNumberInBlacklist": "the mobile number is in the blocklist",
}


@dataclass
class Accepted:
    phone: str  # E.164
    serial_no: str
    body: dict[str, Any]


@dataclass
class FakeTencent:
    secrets: dict[str, str] = field(default_factory=lambda: {"AKID-test": "tc3-test-key"})
    app_ids: set[str] = field(default_factory=lambda: {"1400006666"})
    sign_names: set[str] = field(default_factory=lambda: {"昌乐县政府"})
    templates: dict[str, str] = field(default_factory=lambda: {"449739": "{1}"})  # TemplateId -> text with {n}
    number_codes: dict[str, str] = field(default_factory=dict)  # "+8613800138002" -> code
    request_errors: list[str] = field(default_factory=list)
    http_errors: list[int] = field(default_factory=list)
    balance: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"headers": ..., "body": ...} as received
    accepted: list[Accepted] = field(default_factory=list)
    url: str = ""
    _server: TestServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    async def __aenter__(self) -> FakeTencent:
        self._server = TestServer(self.app(), host="127.0.0.1", port=0)
        await self._server.start_server()
        self.url = str(self._server.make_url("/"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()

    def reply(self, phone: str, text: str, *, sign: str = "昌乐县政府") -> dict[str, Any]:
        """The reply callback (document 59179) for a reply from ``phone`` (E.164 +86...) reading ``text``."""
        return {"extend": "", "mobile": phone.removeprefix("+86"), "nationcode": "86", "sign": sign, "text": text,
                "time": int(time.time())}

    async def push(self, url: str, callback: dict[str, Any]) -> tuple[int, Any]:
        """POST a reply callback to a receiver, as the platform does."""
        data = json.dumps(callback, ensure_ascii=False).encode("utf-8")
        async with aiohttp.ClientSession() as session, session.post(
            url, data=data, headers={"Content-Type": "application/json"}
        ) as response:
            body = await response.text()
            return response.status, json.loads(body) if response.content_type.endswith("json") else body

    def callback(self, *, failed: Collection[str] = ()) -> list[dict[str, str]]:
        """A status callback (doc 43547) for every accepted message; E.164 numbers in ``failed`` undelivered."""
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "user_receive_time": now, "nationcode": "86", "mobile": a.phone.removeprefix("+86"),
                "report_status": "FAIL" if a.phone in failed else "SUCCESS",
                "errmsg": "UNDELIV" if a.phone in failed else "DELIVRD",
                "description": "用户短信未送达" if a.phone in failed else "用户短信送达成功", "sid": a.serial_no,
            }
            for a in self.accepted
        ]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append({"headers": dict(request.headers), "body": raw})
        if self.http_errors:
            return web.Response(status=self.http_errors.pop(0), text="upstream unavailable")
        refusal = self.authenticate(request, raw) or self.check_call(request)
        if refusal is not None:
            return error(*refusal)
        if self.request_errors:
            return error(self.request_errors.pop(0), "scripted refusal")
        try:
            body = json.loads(raw)
        except ValueError:
            return error("InvalidParameter", "the request body is not JSON")
        return self.send_sms(body)

    def authenticate(self, request: web.Request, raw: bytes) -> tuple[str, str] | None:
        match = AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None:
            return "AuthFailure.InvalidAuthorization", "Authorization header is not in the TC3-HMAC-SHA256 form"
        secret = self.secrets.get(match["id"])
        if secret is None:
            return "AuthFailure.SecretIdNotFound", "The SecretId is not found"
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
            return "AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time differ by > 5 min"
        signed = match["signed"].split(";")
        if not {"content-type", "host"} <= set(signed) or signed != sorted(signed):
            return "AuthFailure.SignatureFailure", "content-type and host must be signed, in order"
        expected = expected_signature(secret, match["date"], match["service"], timestamp, request, signed, raw)
        if match["service"] != "sms" or not hmac.compare_digest(expected, match["signature"]):
            return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
        return None

    def check_call(self, request: web.Request) -> tuple[str, str] | None:
        if request.headers.get("X-TC-Action") != "SendSms":
            return "InvalidAction", "The requested action does not exist"
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return "NoSuchVersion", "The requested API version does not exist"
        if not request.headers.get("X-TC-Region"):
            return "MissingParameter", "The request is missing a required parameter `Region`."
        return None

    def send_sms(self, body: dict[str, Any]) -> web.Response:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not body.get(name):
                return error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        numbers = body["PhoneNumberSet"]
        if len(numbers) > MAX_NUMBERS:
            return error("LimitExceeded.PhoneNumberCountLimit", "the number of phone numbers exceeds 200")
        if body["SmsSdkAppId"] not in self.app_ids:
            return error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verification failed")
        if body.get("SignName") not in self.sign_names:
            return error("FailedOperation.SignatureIncorrectOrUnapproved", "signature is incorrect or unapproved")
        template = self.templates.get(str(body["TemplateId"]))
        if template is None:
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "template is incorrect or unapproved")
        params = body.get("TemplateParamSet") or []
        if len(params) != template.count("{") or not all(isinstance(p, str) for p in params):
            return error("InvalidParameterValue.TemplateParameterFormatError", "template parameters do not match")
        text = f"【{body['SignName']}】" + template.format(None, *params)
        matches = [MOBILE.fullmatch(str(n)) for n in numbers]
        valid = [m for m in matches if m is not None and f"+86{m.group(1)}" not in self.number_codes]
        if self.balance is not None:
            if self.balance < len(valid):
                return error("FailedOperation.InsufficientBalanceInSmsPackage", "the SMS package is used up")
            self.balance -= len(valid)
        statuses = [self.status(str(n), m, body, text) for n, m in zip(numbers, matches, strict=True)]
        return web.json_response({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

    def status(self, number: str, match: re.Match[str] | None, body: dict[str, Any], text: str) -> dict[str, Any]:
        phone = f"+86{match.group(1)}" if match else number
        code = "InvalidParameterValue.IncorrectPhoneNumber" if match is None else self.number_codes.get(phone, "Ok")
        serial = f"2028:{uuid.uuid4().hex[:20]}" if code == "Ok" else ""
        if code == "Ok":
            self.accepted.append(Accepted(phone, serial, body))
        return {
            "SerialNo": serial, "PhoneNumber": phone, "Fee": count_segments(text).segments if code == "Ok" else 0,
            "SessionContext": body.get("SessionContext", ""), "Code": code, "Message": MESSAGES.get(code, code),
            "IsoCode": "CN" if match else "",
        }


def expected_signature(
    secret: str, date: str, service: str, timestamp: str, request: web.Request, signed: list[str], raw: bytes
) -> str:
    """The TC3 signature as the server computes it from what it received."""
    headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed)
    canonical = f"POST\n/\n{request.query_string}\n{headers}\n{';'.join(signed)}\n{hashlib.sha256(raw).hexdigest()}"
    if datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d") != date:
        return ""
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n"
    to_sign += hashlib.sha256(canonical.encode()).hexdigest()
    key = hmac.new(("TC3" + secret).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(hmac.new(key, service.encode(), hashlib.sha256).digest(), b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def error(code: str, message: str) -> web.Response:
    body = {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
    return web.json_response({"Response": body})
