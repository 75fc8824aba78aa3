"""Aliyun SMS (阿里云短信, Dysms API 2017-05-25, RPC style): one SendSms call per message.

Documentation: SendSms https://help.aliyun.com/document_detail/55284.html ; SendBatchSms
https://help.aliyun.com/document_detail/102364.htm ; error codes https://help.aliyun.com/document_detail/101346.html ;
delivery receipts (SmsReport) https://help.aliyun.com/document_detail/101867.html ; RPC signature
https://help.aliyun.com/document_detail/28839.html (worked SendSms example: https://help.aliyun.com/document_detail/56189.html).

Aliyun sends templates, not free text: the engine's rendered ``text`` travels as the one template
variable named by ``text_param`` (``TemplateParam={"content": "..."}``) of ``template_code``, signed
with ``sign_name``. A leading ``【sign_name】`` in the text is dropped: the platform adds it itself.

Why one call per message. SendSms takes up to 1000 comma-separated numbers with one TemplateParam,
and SendBatchSms up to 100 numbers with one param set each, but both answer with ONE ``Code`` and
ONE ``BizId`` for the whole call and take one ``OutId``. One malformed number
(isv.MOBILE_NUMBER_ILLEGAL) or one number over its frequency limit (isv.BUSINESS_LIMIT_CONTROL)
rejects or throttles the call without saying which number, so a batch call cannot give one honest
result per message, nor carry our idempotency key per message. SendBatchSms deliveries "may be
delayed" and it is not meant for time-critical alerts. The account QPS limit (5000/s) makes one call
per message affordable, so each message is its own SendSms (run concurrently, bounded by the
connection pool): ``OutId`` = our idempotency key, ``BizId`` = the provider message id.

    body ``Code`` (authoritative; the HTTP status counts only without one)  result
    ----------------------------------------------------------------------  ---------------------------------------
    OK + BizId                                                              Sent(BizId)
    OK without a usable BizId (missing, empty, null, a list...)             Retry(UNRECOGNISED): Aliyun may have
                                                                              taken it (see below)
    isv.BUSINESS_LIMIT_CONTROL (per-number frequency; 分钟级/小时级/天级)   Retry("rate-limited", 60 / 3600 / 86400)
    Throttling.User, Throttling (API flow control)                          Retry("throttled")
    isp.SYSTEM_ERROR, InternalError, ServiceUnavailable (not idempotent)    Retry("provider-error")
    SignatureNonceUsed (the next attempt gets a fresh nonce)                Retry("nonce-reused")
    isv.AMOUNT_NOT_ENOUGH (balance exhausted)                               Retry("balance-exhausted", 3600) + alert
    isv.OUT_OF_SERVICE (account stopped for arrears)                        Retry("account-suspended", 3600) + alert
    isv.DAY_LIMIT_CONTROL / isv.MONTH_LIMIT_CONTROL (console caps)          Retry("account-limit", 3600) + alert
    isv.MOBILE_NUMBER_ILLEGAL                                               Failed("invalid-number")
    isv.BLACK_KEY_CONTROL_LIMIT, isv.SMS_CONTENT_ILLEGAL                    Failed("content-rejected")
    isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL, isv.SMS_SIGN_ILLEGAL,
      isv.SIGN_STATE_ILLEGAL, isv.SMS_SIGNATURE_SCENE_ILLEGAL               Failed("config")
    isv.TEMPLATE_MISSING_PARAMETERS, isv.INVALID_JSON_PARAM, isv.PARAM_LENGTH_LIMIT,
      isv.PARAM_NOT_SUPPORT_URL, isv.INVALID_PARAMETERS,
      isv.MOBILE_COUNT_OVER_LIMIT, Missing<Parameter>                       Failed("invalid-request")
    SignatureDoesNotMatch, InvalidAccessKeyId.NotFound, InvalidAccessKeyId.Inactive,
      InvalidTimeStamp.Expired, isp.RAM_PERMISSION_DENY, isv.DENY_IP_RANGE  Failed("auth")
    any other code                                                          HTTP 5xx/429: Retry; else Failed("rejected")
    timeout, connection error, 2xx without a JSON ``Code``                  Retry (channels.http)
    【sign_name】 + text over 500 characters (checked before any call)        Failed("too-long")

Why OK without a BizId is not Sent. The documented success answer carries ``BizId`` (doc 55284), and the
SmsReport push names the message by ``biz_id`` alone (doc 101867). ``RequestId`` identifies the API call, not
the message: no report ever carries it, so a message recorded under it could never be confirmed. Such an
answer says the platform took the call without saying which message it made of it: ``Retry(UNRECOGNISED)``,
as for any success answer lacking what the vendor documents (``channels.http``).

Account-level alerts: while the account cannot send (balance, suspension, account caps) every message
gets ``Retry`` with a long ``retry_after``; ``account_alert`` holds the reason for the engine (None
again after the next accepted message) and one ERROR is logged per episode. Phone numbers and
secrets are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from channels.base import (
    ChannelOptions,
    Failed,
    OutboundMessage,
    PushedReceiptOptions,
    Retry,
    SendResult,
    Sent,
    message_id_of,
)
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions, HttpReply
from channels.sms_text import ConfirmTextOptions, platform_signed, template_parameter, with_confirm_text

log = logging.getLogger("notifier.channels.aliyun_sms")

API_VERSION = "2017-05-25"
MAX_CHARS = 500  # signature with its 【】 + template text, every character counting 1 (短信发送规则)
ACCOUNT_ALERTS = frozenset({"balance-exhausted", "account-suspended", "account-limit"})

_RETRY: dict[str, str] = {
    "Throttling.User": "throttled",
    "Throttling": "throttled",
    "isp.SYSTEM_ERROR": "provider-error",
    "ServiceUnavailable": "provider-error",
    "InternalError": "provider-error",
    "SignatureNonceUsed": "nonce-reused",
    "isv.AMOUNT_NOT_ENOUGH": "balance-exhausted",
    "isv.OUT_OF_SERVICE": "account-suspended",
    "isv.DAY_LIMIT_CONTROL": "account-limit",
    "isv.MONTH_LIMIT_CONTROL": "account-limit",
}
_FAILED: dict[str, str] = {
    "isv.MOBILE_NUMBER_ILLEGAL": "invalid-number",
    "isv.BLACK_KEY_CONTROL_LIMIT": "content-rejected",
    "isv.SMS_CONTENT_ILLEGAL": "content-rejected",
    **dict.fromkeys(
        ("isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.SIGN_STATE_ILLEGAL",
         "isv.SMS_SIGNATURE_SCENE_ILLEGAL"),
        "config",
    ),
    **dict.fromkeys(
        ("isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT",
         "isv.PARAM_NOT_SUPPORT_URL", "isv.INVALID_PARAMETERS", "isv.MOBILE_COUNT_OVER_LIMIT"),
        "invalid-request",
    ),
    **dict.fromkeys(
        ("SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
         "InvalidTimeStamp.Expired", "isp.RAM_PERMISSION_DENY", "isv.DENY_IP_RANGE"),
        "auth",
    ),
}
_LIMIT_WINDOWS = (("分钟", 60.0), ("小时", 3600.0), ("天", 86400.0))  # words of isv.BUSINESS_LIMIT_CONTROL


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of the RPC signature: unreserved ``A-Za-z0-9-_.~`` kept, space -> %20, ``*`` -> %2A."""
    return quote(value, safe="-_.~")


def aliyun_rpc_signature(params: Mapping[str, str], access_key_secret: str, method: str = "POST") -> str:
    """Base64 HMAC-SHA1 signature (v1.0) of an RPC request's parameters; ``Signature`` itself is ignored."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_phone(recipient: str) -> str:
    """The number as Aliyun wants it: 11 digits for mainland China, country code + number otherwise."""
    digits = recipient.strip().removeprefix("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def classify_code(code: str, message: str, balance_retry_after: float) -> Retry | Failed | None:
    """The result of a non-OK body ``Code``; None when the code is not in the table."""
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        window = next((seconds for word, seconds in _LIMIT_WINDOWS if word in message), 60.0)
        return Retry("rate-limited", window)
    if code in _RETRY:
        reason = _RETRY[code]
        return Retry(reason, balance_retry_after if reason in ACCOUNT_ALERTS else None)
    if code in _FAILED:
        return Failed(_FAILED[code], f"{code}: {message}")
    if code.startswith("Missing"):
        return Failed("invalid-request", f"{code}: {message}")
    return None


@dataclass(frozen=True)
class Receipt:
    """A provider's delivery report for one message (SMS vendors push these to a hook of ours)."""

    provider_message_id: str
    status: Literal["delivered", "failed"]
    detail: str = ""


def parse_aliyun_receipts(body: bytes | str | list[Any]) -> list[Receipt]:
    """Receipts from an SmsReport push (a JSON array); entries without a usable ``biz_id`` (``message_id_of``:
    missing, empty, ``"None"``, a boolean or a list...) are skipped.

    Reply to the push with HTTP 200 ``{"code":0,"msg":"接收成功"}``; Aliyun re-pushes otherwise
    (after 1, 5, 10 min). Receipts may repeat: the engine ignores duplicates.
    """
    items = json.loads(body) if isinstance(body, bytes | str) else body
    if not isinstance(items, list):
        raise ValueError("an Aliyun SmsReport push is a JSON array")
    receipts = []
    for item in items:
        biz_id = message_id_of(item.get("biz_id")) if isinstance(item, dict) else None
        if biz_id is None:
            log.warning("Aliyun receipt without a usable biz_id skipped")
            continue
        success = item.get("success") in (True, "true", "True")
        detail = " ".join(str(item[k]) for k in ("err_code", "err_msg", "report_time") if item.get(k))
        receipts.append(Receipt(biz_id, "delivered" if success else "failed", detail))
    return receipts


class AliyunSmsOptions(HttpOptions, ConfirmTextOptions, PushedReceiptOptions):
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr
    sign_name: str = Field(min_length=2, max_length=12, description="approved signature, without 【】")
    template_code: str = Field(min_length=1, description="approved template, e.g. SMS_15305xxxx")
    text_param: str = Field("content", min_length=1, description="template variable that receives the text")
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"
    balance_retry_after: float = Field(3600.0, gt=0, description="seconds to wait when the account cannot send")


class AliyunSmsChannel(HttpChannel):
    Options = AliyunSmsOptions
    max_batch = 100

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        super().__init__(alias, options)
        self.account_alert: str | None = None  # set while the account cannot send; read by the engine

    @property
    def aliyun(self) -> AliyunSmsOptions:
        assert isinstance(self.options, AliyunSmsOptions)
        return self.options

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        results = await self.send_each(batch, self._send_one)
        self._note_account_state(results)
        return results

    def signed_params(self, message: OutboundMessage, *, nonce: str, timestamp: str) -> dict[str, str]:
        """Every parameter of the SendSms call for ``message``, ``Signature`` included."""
        opts = self.aliyun
        confirm = message.confirm_url is not None
        text = template_parameter(with_confirm_text(message.text, opts, confirm), opts.sign_name)
        params = {
            "AccessKeyId": opts.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.idempotency_key,
            "PhoneNumbers": aliyun_phone(message.recipient),
            "RegionId": opts.region_id,
            "SignName": opts.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": opts.template_code,
            "TemplateParam": json.dumps({opts.text_param: text}, ensure_ascii=False),
            "Timestamp": timestamp,
            "Version": API_VERSION,
        }
        params["Signature"] = aliyun_rpc_signature(params, opts.access_key_secret.get_secret_value(), "POST")
        return params

    def reports_delivery(self) -> bool:
        return self.aliyun.hook_token is not None

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        return platform_signed(with_confirm_text(text, self.aliyun, confirm), self.aliyun.sign_name)

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        chars = len(self.gateway_text(message.text, message.confirm_url is not None))
        if chars > MAX_CHARS:
            return Failed("too-long", f"{chars} characters with the signature; Aliyun takes at most {MAX_CHARS}")
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        params = self.signed_params(message, nonce=str(uuid.uuid4()), timestamp=timestamp)
        reply = await self.request("POST", self.aliyun.endpoint, data=params)
        if isinstance(reply, Retry):
            return reply
        return self._result(reply)

    def _result(self, reply: HttpReply) -> SendResult:
        body = reply.json()
        code = body.get("Code") if isinstance(body, dict) else None
        if not isinstance(code, str):
            return self.classify(reply) or Retry("unreadable reply")
        if code == "OK":
            biz_id = message_id_of(body.get("BizId"))
            return Sent(biz_id) if biz_id is not None else Retry(UNRECOGNISED)
        message = self.redact(str(body.get("Message", "")))[:200]
        result = classify_code(code, message, self.aliyun.balance_retry_after)
        if result is None:
            result = self.classify(reply) or Failed("rejected", f"{code}: {message}")
        if isinstance(result, Failed):
            log.info("%s: Aliyun refused a message: %s %s", self.alias, code, message)
        return result

    def _note_account_state(self, results: list[SendResult]) -> None:
        alert = next((r.reason for r in results if isinstance(r, Retry) and r.reason in ACCOUNT_ALERTS), None)
        if alert is not None and alert != self.account_alert:
            log.error("%s: Aliyun SMS account cannot send (%s); messages are held, top up or fix the account",
                      self.alias, alert)
        if alert is not None:
            self.account_alert = alert
        elif any(isinstance(r, Sent) for r in results):
            self.account_alert = None


__all__ = ["AliyunSmsChannel", "AliyunSmsOptions", "Receipt", "aliyun_rpc_signature", "parse_aliyun_receipts"]
