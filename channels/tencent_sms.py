"""Tencent Cloud SMS (腾讯云短信, API 3.0 SendSms, version 2021-01-11), signed with TC3-HMAC-SHA256.

Documentation: SendSms https://cloud.tencent.com/document/api/382/55981 ; error codes
https://cloud.tencent.com/document/api/382/59177 and https://cloud.tencent.com/document/api/382/38780 ;
signature v3 https://cloud.tencent.com/document/api/213/30654 ; status callback
https://cloud.tencent.com/document/api/382/5807 (https://www.tencentcloud.com/document/product/382/43547).

Tencent sends templates: the rendered ``text`` (without a leading ``【sign_name】``, which the platform
adds) is the single parameter of ``template_id`` (``TemplateParamSet=[text]``). One SendSms call takes
up to 200 numbers with ONE parameter set and answers per number in ``SendStatusSet``, so the messages
of a batch whose texts are identical go out in one call (a number at most once per call) and every
message still gets its own result; messages with different texts go out in separate calls.
``SessionContext`` carries our idempotency key (the keys of a shared call, or their SHA-256 when that
exceeds 512 bytes); ``SerialNo`` is the provider message id.

    ``Code`` (per number in SendStatusSet, or Response.Error for the call)  result
    ----------------------------------------------------------------------  ----------------------------------------
    Ok + SerialNo                                                           Sent(SerialNo)
    Ok without a usable SerialNo (missing, empty, null...): the callback    Retry(UNRECOGNISED)
      names a message by its sid (= SerialNo) alone
    LimitExceeded.PhoneNumberThirtySecondLimit                              Retry("rate-limited", 30)
    LimitExceeded.PhoneNumberOneHourLimit                                   Retry("rate-limited", to the next hour)
    LimitExceeded.PhoneNumberDailyLimit (natural day)                       Retry("rate-limited", to 00:00 UTC+8)
    LimitExceeded.DeliveryFrequencyLimit, other LimitExceeded.*             Retry("rate-limited")
    LimitExceeded.AppDailyLimit, LimitExceeded.DailyLimit                   Retry("account-limit", to 00:00) + alert
    FailedOperation.InsufficientBalanceInSmsPackage                         Retry("balance-exhausted", 3600) + alert
    RequestLimitExceeded, RequestLimitExceeded.* (API QPS)                  Retry("throttled")
    InternalError.* (the message may still go: receipts tell)               Retry("provider-error")
    LimitExceeded.PhoneNumberSameContentDailyLimit                          Failed("duplicate")
    InvalidParameterValue.IncorrectPhoneNumber                              Failed("invalid-number")
    FailedOperation.PhoneNumberInBlacklist (opted out / carrier list)       Failed("opted-out")
    FailedOperation.ContainSensitiveWord                                    Failed("content-rejected")
    FailedOperation.SignatureIncorrectOrUnapproved,
      FailedOperation.TemplateIncorrectOrUnapproved                         Failed("config")
    InvalidParameterValue.*, InvalidParameter.*, MissingParameter,
      UnknownParameter, LimitExceeded.PhoneNumberCountLimit                 Failed("invalid-request")
    AuthFailure.*, UnauthorizedOperation.*                                  Failed("auth")
    other FailedOperation.* and unknown codes                               Failed("rejected")
    no status for a number we sent                                          Retry("no-status")
    two different statuses for one number, SendStatusSet not a list         Retry(UNRECOGNISED)
    timeout, connection error, HTTP 5xx/429, 2xx without JSON ``Response``  Retry (channels.http)

While the account cannot send, ``account_alert`` holds the reason (None after the next accepted
message) and one ERROR is logged per episode. Phone numbers and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import string
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from channels.aliyun_sms import Receipt
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
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions
from channels.sms_text import ConfirmTextOptions, platform_signed, template_parameter, with_confirm_text

log = logging.getLogger("notifier.channels.tencent_sms")

API_VERSION = "2021-01-11"
MAX_NUMBERS = 200
ACCOUNT_ALERTS = frozenset({"balance-exhausted", "account-limit"})
_FAILED = {
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "duplicate",
    "LimitExceeded.PhoneNumberCountLimit": "invalid-request",
    "InvalidParameterValue.IncorrectPhoneNumber": "invalid-number",
    "FailedOperation.PhoneNumberInBlacklist": "opted-out",
    "FailedOperation.ContainSensitiveWord": "content-rejected",
    "FailedOperation.SignatureIncorrectOrUnapproved": "config",
    "FailedOperation.TemplateIncorrectOrUnapproved": "config",
}
_FAILED_PREFIXES = (
    ("InvalidParameter", "invalid-request"), ("MissingParameter", "invalid-request"),
    ("UnknownParameter", "invalid-request"), ("AuthFailure", "auth"), ("UnauthorizedOperation", "auth"),
)
_CN_OFFSET = 8 * 3600  # the natural day of Tencent's daily limits is China's (UTC+8)


def tc3_authorization(
    secret_id: str, secret_key: str, service: str, host: str, payload: str | bytes, timestamp: int,
    action: str, version: str, region: str,
) -> dict[str, str]:
    """Every header of a signed API 3.0 POST with a JSON body, ``Authorization`` included."""
    body = payload.encode() if isinstance(payload, str) else payload
    content_type = "application/json; charset=utf-8"
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_request = "\n".join((
        "POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
        hashlib.sha256(body).hexdigest(),
    ))
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ("TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = f"TC3{secret_key}".encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
        f"Signature={signature}",
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": version,
        "X-TC-Region": region,
    }


def seconds_to_next_cn_day(now: float) -> float:
    """Seconds from ``now`` to the next 00:00 in China (UTC+8), when daily limits reset."""
    return 86400.0 - (now + _CN_OFFSET) % 86400


def classify_code(code: str, message: str, now: float, balance_retry_after: float) -> Retry | Failed:
    """The result of one SendStatus or whole-request ``Code`` other than ``Ok``."""
    detail = f"{code}: {message}"
    if code == "FailedOperation.InsufficientBalanceInSmsPackage":
        return Retry("balance-exhausted", balance_retry_after)
    if code in ("LimitExceeded.AppDailyLimit", "LimitExceeded.DailyLimit"):
        return Retry("account-limit", seconds_to_next_cn_day(now))
    if code in _FAILED:
        return Failed(_FAILED[code], detail)
    if code == "LimitExceeded.PhoneNumberThirtySecondLimit":
        return Retry("rate-limited", 30.0)
    if code == "LimitExceeded.PhoneNumberOneHourLimit":
        return Retry("rate-limited", 3600.0 - now % 3600)
    if code == "LimitExceeded.PhoneNumberDailyLimit":
        return Retry("rate-limited", seconds_to_next_cn_day(now))
    if code.startswith("LimitExceeded"):
        return Retry("rate-limited")
    if code.startswith("RequestLimitExceeded"):
        return Retry("throttled")
    if code.startswith("InternalError"):
        return Retry("provider-error")
    reason = next((reason for prefix, reason in _FAILED_PREFIXES if code.startswith(prefix)), "rejected")
    return Failed(reason, detail)


def parse_tencent_callback(body: bytes | str | list[Any]) -> list[Receipt]:
    """Receipts from a status callback (a JSON array); answer it with ``{"result":0,"errmsg":"OK"}``. Entries
    without a usable ``sid`` (``message_id_of``: missing, empty, ``"None"``, a boolean or a list...) are skipped."""
    items = json.loads(body) if isinstance(body, bytes | str) else body
    if not isinstance(items, list):
        raise ValueError("a Tencent SMS status callback is a JSON array")
    receipts = []
    for item in items:
        sid = message_id_of(item.get("sid")) if isinstance(item, dict) else None
        if sid is None:
            log.warning("Tencent status report without a usable sid skipped")
            continue
        detail = " ".join(str(item[k]) for k in ("errmsg", "description", "user_receive_time") if item.get(k))
        delivered = item.get("report_status") == "SUCCESS"
        receipts.append(Receipt(sid, "delivered" if delivered else "failed", detail))
    return receipts


def group_by_text(batch: list[OutboundMessage]) -> list[list[int]]:
    """Indexes of ``batch`` in calls: same text, each number at most once, at most 200 numbers."""
    calls: list[list[int]] = []
    open_calls: dict[tuple[str, bool], list[list[int]]] = {}
    for index, message in enumerate(batch):
        candidates = open_calls.setdefault((message.text, message.confirm_url is not None), [])
        call = next((c for c in candidates if len(c) < MAX_NUMBERS
                     and all(batch[i].recipient != message.recipient for i in c)), None)
        if call is None:
            call = []
            candidates.append(call)
            calls.append(call)
        call.append(index)
    return calls


class TencentSmsOptions(HttpOptions, ConfirmTextOptions, PushedReceiptOptions):
    secret_id: str = Field(min_length=1)
    secret_key: SecretStr
    sdk_app_id: str = Field(min_length=1, description="SmsSdkAppId, e.g. 1400006666")
    sign_name: str = Field(min_length=1, description="approved signature, without 【】")
    template_id: str = Field(min_length=1, description="approved template with one parameter {1}")
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com/"
    balance_retry_after: float = Field(3600.0, gt=0, description="seconds to wait when the package is used up")


class TencentSmsChannel(HttpChannel):
    Options = TencentSmsOptions
    max_batch = MAX_NUMBERS
    messages_per_request = MAX_NUMBERS  # one SendSms call per text

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        super().__init__(alias, options)
        self.account_alert: str | None = None  # set while the account cannot send; read by the engine

    @property
    def tencent(self) -> TencentSmsOptions:
        assert isinstance(self.options, TencentSmsOptions)
        return self.options

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        calls = group_by_text(batch)
        answers = await asyncio.gather(*(self._send_call([batch[i] for i in call]) for call in calls))
        results: list[SendResult] = [Retry("no-status")] * len(batch)
        for call, answer in zip(calls, answers, strict=True):
            for index, result in zip(call, answer, strict=True):
                results[index] = result
        self._note_account_state(results)
        return results

    def reports_delivery(self) -> bool:
        return self.tencent.hook_token is not None

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        return platform_signed(with_confirm_text(text, self.tencent, confirm), self.tencent.sign_name)

    def request_body(self, messages: list[OutboundMessage]) -> dict[str, Any]:
        opts = self.tencent
        keys = ",".join(m.idempotency_key for m in messages)
        if len(keys.encode()) >= 512:
            keys = "sha256:" + hashlib.sha256(keys.encode()).hexdigest()
        return {
            "PhoneNumberSet": [m.recipient for m in messages],
            "SmsSdkAppId": opts.sdk_app_id,
            "SignName": opts.sign_name,
            "TemplateId": opts.template_id,
            "TemplateParamSet": [template_parameter(
                with_confirm_text(messages[0].text, opts, messages[0].confirm_url is not None), opts.sign_name
            )],
            "SessionContext": keys,
        }

    async def _send_call(self, messages: list[OutboundMessage]) -> list[SendResult]:
        opts = self.tencent
        payload = json.dumps(self.request_body(messages), ensure_ascii=False).encode()
        host = urlsplit(opts.endpoint).netloc
        now = time.time()
        headers = tc3_authorization(opts.secret_id, opts.secret_key.get_secret_value(), "sms", host, payload,
                                    int(now), "SendSms", API_VERSION, opts.region)
        reply = await self.request("POST", opts.endpoint, data=payload, headers=headers)
        if isinstance(reply, Retry):
            return [reply] * len(messages)
        body = reply.json()
        response = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(response, dict):
            return [self.classify(reply) or Retry("unreadable reply")] * len(messages)
        error = response.get("Error")
        if isinstance(error, dict):
            result = self._refusal(str(error.get("Code")), error.get("Message"), now)
            return [result] * len(messages)
        status_set = response.get("SendStatusSet")
        if not isinstance(status_set, list):
            return [Retry(UNRECOGNISED)] * len(messages)
        statuses: dict[str, dict[str, Any] | None] = {}  # None: the number answered twice, differently
        for status in status_set:
            if isinstance(status, dict):
                number = _digits(status.get("PhoneNumber"))
                statuses[number] = status if statuses.get(number, status) == status else None
        return [self._status(statuses.get(_digits(m.recipient), {}), now) for m in messages]

    def _status(self, status: dict[str, Any] | None, now: float) -> SendResult:
        if not status:
            return Retry("no-status") if status is not None else Retry(UNRECOGNISED)
        if status.get("Code") == "Ok":
            serial = message_id_of(status.get("SerialNo"))
            return Sent(serial) if serial is not None else Retry(UNRECOGNISED)
        return self._refusal(str(status.get("Code")), status.get("Message"), now)

    def _refusal(self, code: str, message: Any, now: float) -> Retry | Failed:
        text = self.redact(str(message or ""))[:200]
        result = classify_code(code, text, now, self.tencent.balance_retry_after)
        if isinstance(result, Failed):
            log.info("%s: Tencent refused a message: %s %s", self.alias, code, text)
        return result

    def _note_account_state(self, results: list[SendResult]) -> None:
        alert = next((r.reason for r in results if isinstance(r, Retry) and r.reason in ACCOUNT_ALERTS), None)
        if alert is not None and alert != self.account_alert:
            log.error("%s: Tencent SMS account cannot send (%s); messages are held until it is fixed",
                      self.alias, alert)
        if alert is not None:
            self.account_alert = alert
        elif any(isinstance(r, Sent) for r in results):
            self.account_alert = None


def _digits(number: Any) -> str:
    """A number reduced to its digits, with a mainland 86 prefix (Tencent answers in E.164)."""
    digits = "".join(c for c in str(number or "") if c in string.digits).removeprefix("00")
    return "86" + digits if len(digits) == 11 and digits.startswith("1") else digits


__all__ = ["TencentSmsChannel", "TencentSmsOptions", "parse_tencent_callback", "seconds_to_next_cn_day",
           "tc3_authorization"]
