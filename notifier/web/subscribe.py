"""Subscription by SMS: the page a printed notice's QR code opens at the village notice board.

    GET  /subscribe?area=<village>&topic=<topic>   the form (Chinese first): the village's town and name,
                                                   name, mobile number, every topic as a checkbox (the
                                                   link's topic ticked), the consent sentence; 404 page
                                                   for a missing or unknown village; the topic is optional
    POST /subscribe                                checks the form, sends a 6-digit code by SMS and shows
                                                   the page to enter it
    POST /subscribe/confirm                        the signed request id and the code: creates the resident
                                                   (or adds the topics to the resident with that number)

Every answer is an HTML page (jinja2 with autoescape, ``templates/web``), never a problem document:

    200  the form, the code page, or the success page ("订阅成功")
    400  the form's signed token is missing, forged or over an hour old (the form comes back with a fresh
         one), or the code page's request id is not ours
    404  GET with a wrong link               410  the code expired: start again
    422  a field is wrong (each error names its field) or the code is wrong (with the attempts left)
    429  too many codes (per phone: 1 a minute, 5 a day; per client address: 20 an hour) or wrong codes
    503  no SMS channel runs in this process, or the gateway did not take the code

The code goes out through the first configured alias of kind ``sms`` of the running engine, straight to
the adapter's ``send``: it is a transactional message, not a notice, so it has no delivery and no retry
(the resident asks again). It carries ``notice_id`` 0 and ``delivery_id`` minus the request id, so it
never shares an outbox file or a provider id with a delivery; the gateway adds its signature. The store
keeps the code's HMAC-SHA256 under ``security.signing_secret``, never the code (``subscription_requests``).
The request id travels signed (``notifier.signing``) so that requests cannot be enumerated; the form
carries a signed token (1 hour) so that a POST needs the page first. Logs carry masked phones only.
The client address is the TCP peer's: behind a reverse proxy every resident shares the proxy's limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from multidict import MultiDictProxy
from pydantic import SecretStr, ValidationError

from channels.base import Channel, OutboundMessage, Sent
from notifier.api.keys import ENGINE, SETTINGS, STORE
from notifier.api.routing import Answer, Param, Route
from notifier.domain.contacts import mask_phone, normalise_phone
from notifier.domain.errors import NotifierError
from notifier.domain.models import Subscriber, SubscriberIn, SubscriberPatch
from notifier.errorlog import ErrorLog
from notifier.signing import ExpiredToken, TokenError, sign, verify
from notifier.store import Store
from notifier.store.database import Row
from notifier.store.subscription_requests import NewRequest, RequestCounts

log = logging.getLogger("notifier.web")

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "web"
CODE_TTL = 600.0  # the code's validity, seconds
FORM_TTL = 3600.0  # the form token's
REQUEST_TTL = 86400.0  # the signed request id's; the code's own expiry is in the table
MAX_ATTEMPTS = 5
PHONE_PER_MINUTE, PHONE_PER_DAY, IP_PER_HOUR = 1, 5, 20
ACTOR = "web:subscribe"
FORM_PURPOSE, REQUEST_PURPOSE = "subform", "subreq"
CODE_TEXT = "您的订阅验证码为{code}，10分钟内有效。如非本人操作请忽略。"
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("subscribe_clock")  # optional; time.time when unset

_VILLAGE = re.compile(r"[0-9]{12}")
_LABELS = {
    "name": "姓名",
    "phone": "手机号码",
    "area": "村庄",
    "topics": "订阅内容",
    "consent": "同意接收",
    "form_token": "页面",
    "code": "验证码",
}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageError:
    field: str
    message: str

    @property
    def label(self) -> str:
        return _LABELS.get(self.field, self.field)


@dataclass
class FormValues:
    name: str = ""
    phone: str = ""
    topics: list[str] = field(default_factory=list)
    consent: bool = False


# --- rendering -----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(template: str, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any) -> web.Response:
    text = _environment().get_template(template).render(**context)
    return web.Response(
        status=status, text=text, content_type="text/html", charset="utf-8", headers={**_HEADERS, **(headers or {})}
    )


def _message(
    status: int,
    title: str,
    lines: Sequence[str],
    english: str = "",
    *,
    again_url: str = "",
    errors: Sequence[PageError] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return _render(
        "message.html.j2",
        status,
        headers,
        title=title,
        heading=title,
        lines=lines,
        english=english,
        again_url=again_url,
        errors=errors,
    )


def _wrong_link() -> web.Response:
    return _message(
        404,
        "链接有误",
        ["这个订阅链接不完整或已失效，没有找到对应的村庄。", "请重新扫描村务公开栏通知上的二维码，或联系村委会。"],
        "This subscription link is wrong or incomplete: please scan the QR code on the notice again.",
    )


def _again_url(area_code: str, topics: Sequence[str] = ()) -> str:
    query = {"area": area_code, **({"topic": topics[0]} if topics else {})}
    return "/subscribe?" + urlencode(query)


def never_500(handler: Handler) -> Handler:
    """A resident never sees a stack trace or a JSON problem: any failure is a short HTML page."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _message(413, "内容过长", ["提交的内容过长，请返回修改后再试。"], "The form is too large.")
        except web.HTTPException:
            raise
        except Exception:
            log.exception("resident page %s %s failed", request.method, request.path)
            return _message(500, "系统繁忙", ["系统暂时出现问题，请稍后再试。"], "Something went wrong; try later.")

    return wrapped


# --- helpers -------------------------------------------------------------------------------------------------------


def _now(request: web.Request) -> float:
    return request.app.get(CLOCK, time.time)()


def _secret(request: web.Request) -> SecretStr:
    return request.app[SETTINGS].security.signing_secret


def _text(form: Mapping[str, Any], key: str, limit: int = 200) -> str:
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def code_hash(secret: SecretStr, phone: str, code: str) -> str:
    """What the table keeps instead of the code: HMAC-SHA256 keyed with the signing secret, bound to the phone."""
    message = f"subscribe-code:{phone}:{code}".encode()
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


async def _village(store: Store, code: str) -> Row | None:
    return await store.village_names(code) if _VILLAGE.fullmatch(code) else None


def _place(village: Row) -> str:
    return f"{village['town'] or ''}{village['village']}"


def _consent_text(village: Row) -> str:
    county = village["county"] or "当地"
    return f"我同意接收{county}政府通过短信发送的公益通知，可随时回复TD退订"


async def _read_form(request: web.Request) -> MultiDictProxy[Any] | None:
    try:
        return await request.post()
    except (ValueError, AssertionError, UnicodeDecodeError, HttpProcessingError):
        return None


def _bad_form() -> web.Response:
    return _message(400, "提交失败", ["没有收到表单内容，请重新扫码填写。"], "The form could not be read.")


def _form_page(
    request: web.Request,
    village: Row,
    topics: list[Row],
    values: FormValues,
    errors: Sequence[PageError] = (),
    status: int = 200,
) -> web.Response:
    token = sign({"p": FORM_PURPOSE, "a": village["code"]}, _secret(request), FORM_TTL, now=_now(request))
    return _render(
        "subscribe.html.j2",
        status,
        title="订阅通知 / Subscribe",
        place=_place(village),
        area_code=village["code"],
        topics=topics,
        values=values,
        errors=errors,
        form_token=token,
        consent_text=_consent_text(village),
    )


# --- GET /subscribe ------------------------------------------------------------------------------------------------


@never_500
async def subscribe_page(request: web.Request) -> web.Response:
    store = request.app[STORE]
    village = await _village(store, request.query.get("area", "").strip())
    if village is None:
        return _wrong_link()
    topics = await store.topic_names()
    wanted = request.query.get("topic", "").strip()
    ticked = [wanted] if any(t["code"] == wanted for t in topics) else []
    return _form_page(request, village, topics, FormValues(topics=ticked))


# --- POST /subscribe -----------------------------------------------------------------------------------------------


def _form_token_error(token: str, area_code: str, secret: SecretStr, now: float) -> PageError | None:
    if not token:
        return PageError("form_token", "请通过扫码打开的页面提交")
    try:
        claims = verify(token, secret, now=now)
    except ExpiredToken:
        return PageError("form_token", "页面已打开超过1小时，请核对后再次提交")
    except TokenError:
        return PageError("form_token", "页面已损坏，请重新扫码")
    if claims.get("p") != FORM_PURPOSE or claims.get("a") != area_code:
        return PageError("form_token", "页面已损坏，请重新扫码")
    return None


def _validate(values: FormValues, area_code: str, known_topics: set[str]) -> tuple[list[PageError], str]:
    """The field errors of a submitted form, and the phone number in E.164 when it is valid."""
    errors: list[PageError] = []
    if not values.name:
        errors.append(PageError("name", "请填写姓名"))
    elif len(values.name) > 100:
        errors.append(PageError("name", "姓名不能超过100个字"))
    phone = ""
    try:
        phone = normalise_phone(values.phone)
    except ValueError:
        errors.append(PageError("phone", "请填写正确的11位手机号码"))
    unknown = [code for code in values.topics if code not in known_topics]
    if unknown:
        errors.append(PageError("topics", "所选内容不存在：" + "、".join(unknown)))
    elif not values.topics:
        errors.append(PageError("topics", "请至少选择一项"))
    if not values.consent:
        errors.append(PageError("consent", "请勾选同意接收短信通知"))
    if not errors:
        try:  # the rules the resident must pass at confirmation, checked now
            SubscriberIn(name=values.name, phone=phone, area_code=area_code, topics=values.topics, channels=["sms"])
        except ValidationError as exc:
            fields = {"name": "name", "phone": "phone", "area_code": "area", "topics": "topics"}
            for error in exc.errors(include_url=False):
                errors.append(PageError(fields.get(str(error["loc"][0]), "name"), "格式不正确"))
    return errors, phone


def _refusal(counts: RequestCounts) -> tuple[str, int] | None:
    """(reason, seconds to wait) when a limit is reached."""
    if counts.phone_minute >= PHONE_PER_MINUTE:
        return "验证码已发送，请1分钟后再获取。", 60
    if counts.phone_day >= PHONE_PER_DAY:
        return "这个号码今天获取验证码的次数已达上限，请明天再试。", 86400
    if counts.ip_hour >= IP_PER_HOUR:
        return "当前网络获取验证码过于频繁，请1小时后再试。", 3600
    return None


def _sms_adapter(request: web.Request) -> tuple[str, Channel, ErrorLog] | None:
    """The engine's first SMS alias, its adapter, and the engine's log of adapter errors."""
    engine = request.app.get(ENGINE)
    if engine is None:
        return None
    aliases = engine.ctx.aliases_of("sms")
    return (aliases[0], engine.ctx.channels[aliases[0]], engine.ctx.errors) if aliases else None


async def _send_code(
    alias: str, adapter: Channel, errors: ErrorLog, phone: str, code: str, request_id: int
) -> str | None:
    """None when the gateway took the code, else why not (for the log)."""
    message = OutboundMessage(
        delivery_id=-request_id,
        notice_id=0,
        channel="sms",
        alias=alias,
        recipient=phone,
        text=CODE_TEXT.format(code=code),
        idempotency_key=f"subscribe-r{request_id}",
        priority=100,
    )
    try:
        results = await adapter.send([message])
    except Exception as exc:  # an adapter's exception means "try again later" (channels.base)
        errors.exception(exc, "subscription code via %s: the adapter raised %s", alias, type(exc).__name__)
        return f"{type(exc).__name__}"
    result = results[0] if results else None
    return None if isinstance(result, Sent) else repr(result)


@never_500
async def subscribe_submit(request: web.Request) -> web.Response:
    form = await _read_form(request)
    if form is None:
        return _bad_form()
    store, now = request.app[STORE], _now(request)
    village = await _village(store, _text(form, "area"))
    if village is None:
        return _message(
            422, "链接有误", ["没有找到对应的村庄，请重新扫码。"], "Unknown village: scan the QR code again.",
            errors=[PageError("area", "村庄代码不正确")],
        )  # fmt: skip
    topics = await store.topic_names()
    values = FormValues(
        name=_text(form, "name"),
        phone=_text(form, "phone", 40),
        topics=list(dict.fromkeys(v.strip()[:64] for v in form.getall("topics", []) if isinstance(v, str)))[:50],
        consent=bool(_text(form, "consent")),
    )
    token_error = _form_token_error(_text(form, "form_token", 2048), village["code"], _secret(request), now)
    if token_error is not None:
        return _form_page(request, village, topics, values, [token_error], 400)
    errors, phone = _validate(values, village["code"], {t["code"] for t in topics})
    if errors:
        return _form_page(request, village, topics, values, errors, 422)
    sms = _sms_adapter(request)
    if sms is None:
        return _message(
            503, "暂不支持短信订阅", ["本系统目前没有开通短信发送，暂时无法通过短信订阅。", "请联系村委会登记订阅。"],
            "Subscription by text message is not available at the moment.",
        )  # fmt: skip
    code = f"{secrets.randbelow(1_000_000):06d}"
    client_ip = request.remote or "unknown"
    new = NewRequest(
        phone, values.name, village["code"], values.topics, client_ip,
        code_hash(_secret(request), phone, code), MAX_ATTEMPTS, now + CODE_TTL,
    )  # fmt: skip
    async with store.db.transaction():  # limits checked and the request counted atomically
        await store.purge_subscription_requests(now)
        refusal = _refusal(await store.count_subscription_requests(phone, client_ip, now))
        request_id = 0 if refusal else await store.insert_subscription_request(new, now)
    if refusal is not None:
        reason, wait = refusal
        log.info("subscription code refused for %s: rate limit", mask_phone(phone))
        return _message(429, "操作过于频繁", [reason], "Too many requests; please try later.",
                        headers={"Retry-After": str(wait)})  # fmt: skip
    failure = await _send_code(*sms, phone, code, request_id)
    if failure is not None:
        await store.mark_subscription_request_unsent(request_id)
        log.warning("subscription code to %s via %s not sent: %s", mask_phone(phone), sms[0], failure)
        return _message(503, "短信发送失败", ["验证码短信暂时未能发出，请稍后再试。"],
                        "The code could not be sent; please try again later.")  # fmt: skip
    log.info("subscription request %d: code sent to %s via %s", request_id, mask_phone(phone), sms[0])
    token = sign({"p": REQUEST_PURPOSE, "r": request_id}, _secret(request), REQUEST_TTL, now=now)
    return _code_page(token, phone, _again_url(village["code"], values.topics))


def _code_page(token: str, phone: str, again_url: str, error: str = "", status: int = 200) -> web.Response:
    return _render(
        "subscribe_code.html.j2",
        status,
        title="输入验证码 / Enter the code",
        masked_phone=mask_phone(phone).removeprefix("+86"),
        minutes=int(CODE_TTL // 60),
        request_token=token,
        again_url=again_url,
        error=error,
    )


# --- POST /subscribe/confirm ---------------------------------------------------------------------------------------


def _request_id(token: str, secret: SecretStr, now: float) -> int | None:
    try:
        claims = verify(token, secret, now=now)
    except TokenError:
        return None
    request_id = claims.get("r")
    if claims.get("p") != REQUEST_PURPOSE or type(request_id) is not int or request_id <= 0:
        return None
    return request_id


async def _subscribe(store: Store, row: Row, now: float) -> Subscriber | None:
    """Create the resident or add the topics to the one with this number; None when the request was taken."""
    topics: list[str] = json.loads(row["topics"])
    source = f"web:qr-code {row['area_code']}"
    async with store.db.transaction():
        if not await store.confirm_subscription_request(row["id"], now):
            return None
        existing = await store.find_subscriber_by_phone(row["phone"])
        if existing is None:
            data = SubscriberIn(
                name=row["name"], phone=row["phone"], area_code=row["area_code"], topics=topics, channels=["sms"],
                consent_source=source,
            )  # fmt: skip
            subscriber = await store.create_subscriber(data, ACTOR)
        else:
            patch = _patch(await store.get_subscriber(existing), topics)
            subscriber = await store.update_subscriber(existing, patch, ACTOR)
        await store.set_subscription_request_subscriber(row["id"], subscriber.id)
        detail: dict[str, object] = {"request": row["id"], "source": source, "topics": topics, "new": existing is None}
        await store.audit(ACTOR, "subscriber.subscribe", "subscriber", subscriber.id, detail)
    return subscriber


def _patch(current: Subscriber, topics: list[str]) -> SubscriberPatch:
    """The resident's topics plus the new ones; SMS consented to again (area and name stay as they were)."""
    changes: dict[str, Any] = {"topics": list(dict.fromkeys([*current.topics, *topics]))}
    if set(topics) & set(current.opt_out_topics):
        changes["opt_out_topics"] = [t for t in current.opt_out_topics if t not in topics]
    if "sms" in current.opt_out_channels:
        changes["opt_out_channels"] = [c for c in current.opt_out_channels if c != "sms"]
    if "sms" not in current.channels:
        changes["channels"] = [*current.channels, "sms"]
    if current.consent.withdrawn_at is not None:
        changes["consent_withdrawn"] = False
    return SubscriberPatch.model_validate(changes)


def _start_again(status: int, title: str, line: str, english: str, row: Row) -> web.Response:
    again = _again_url(row["area_code"], json.loads(row["topics"]))
    return _message(status, title, [line], english, again_url=again)


@never_500
async def subscribe_confirm(request: web.Request) -> web.Response:
    form = await _read_form(request)
    if form is None:
        return _bad_form()
    store, now, secret = request.app[STORE], _now(request), _secret(request)
    token = _text(form, "request", 2048)
    request_id = _request_id(token, secret, now)
    row = None if request_id is None else await store.get_subscription_request(request_id)
    if row is None:
        return _message(400, "链接已失效", ["没有找到这次订阅，请重新扫码订阅。"], "This request is unknown.")
    if row["state"] == "confirmed":
        return _success()
    if row["state"] != "pending" or row["expires_at"] <= now:
        return _start_again(410, "验证码已过期", "验证码已超过10分钟，请重新获取。", "The code has expired.", row)
    if row["attempts"] >= row["max_attempts"]:
        return _start_again(429, "错误次数过多", "验证码输错次数过多，请重新获取。", "Too many wrong codes.", row)
    again = _again_url(row["area_code"], json.loads(row["topics"]))
    code = unicodedata.normalize("NFKC", _text(form, "code", 20)).replace(" ", "")
    if not re.fullmatch(r"[0-9]{6}", code):
        left = row["max_attempts"] - row["attempts"]
        return _code_page(token, row["phone"], again, f"验证码是6位数字，还可以输入{left}次。", 422)
    if not hmac.compare_digest(row["code_hash"], code_hash(secret, row["phone"], code)):
        left = await store.count_subscription_attempt(row["id"], now)
        log.info("subscription request %d: wrong code (%s attempts left)", row["id"], left)
        if not left:
            return _start_again(429, "错误次数过多", "验证码输错次数过多，请重新获取。", "Too many wrong codes.", row)
        return _code_page(token, row["phone"], again, f"验证码不正确，还可以输入{left}次。", 422)
    try:
        subscriber = await _subscribe(store, row, now)
    except NotifierError as exc:
        log.warning("subscription request %d could not be confirmed: %s", row["id"], exc.detail)
        return _start_again(409, "订阅未完成", "订阅信息已变化，请重新订阅。", "Not saved; start again.", row)
    if subscriber is None:  # a double tap: the other request did it
        fresh = await store.get_subscription_request(row["id"])
        if fresh is None or fresh["state"] != "confirmed":
            return _start_again(410, "验证码已过期", "验证码已失效，请重新获取。", "The code is no longer valid.", row)
    else:
        log.info("subscription request %d confirmed for %s", row["id"], mask_phone(row["phone"]))
    return _success()


def _success() -> web.Response:
    lines = ["您已成功订阅，今后将通过短信收到政府公益通知。", "如需退订，可随时回复TD。"]
    return _message(200, "订阅成功", lines, "You are subscribed: notices will reach you by text message.")


def _page(description: str) -> Answer:
    return Answer(description, "text/html", {"type": "string"})


_FORM = "application/x-www-form-urlencoded"
_VILLAGE_CODE = {"type": "string", "pattern": "^[0-9]{12}$"}
_SUBMIT = {
    "type": "object",
    "properties": {
        "area": _VILLAGE_CODE,
        "name": {"type": "string", "maxLength": 100},
        "phone": {"type": "string", "maxLength": 40},
        "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
        "consent": {"type": "string", "description": "any non-empty value: the resident ticked the consent"},
        "form_token": {"type": "string", "description": "the signed token of the form page"},
    },
    "required": ["area"],
}
_CONFIRM = {
    "type": "object",
    "properties": {
        "request": {"type": "string", "description": "the signed request id of the code page"},
        "code": {"type": "string", "description": "the 6-digit code from the SMS"},
    },
    "required": ["request", "code"],
}
_TOO_LARGE = _page("the form is too large")
ROUTES = [
    Route("GET", "/subscribe", subscribe_page, "Subscription page a notice's QR code opens", "resident pages",
          public=True, success=_page("the form"),
          params=(Param("area", _VILLAGE_CODE, required=True, description="the village code"),
                  Param("topic", {"type": "string"}, description="the topic to tick")),
          extra_responses={404: _page("unknown or missing village")}),
    Route("POST", "/subscribe", subscribe_submit, "Send a confirmation code by SMS", "resident pages", public=True,
          content={_FORM: _SUBMIT, "multipart/form-data": _SUBMIT}, content_required=True,
          success=_page("the page to enter the code"),
          extra_responses={400: _page("missing, forged or stale form token, or no form"), 413: _TOO_LARGE,
                           422: _page("a field is wrong, each error naming its field"), 429: _page("rate limit"),
                           503: _page("no SMS channel, or the code was not sent")}),
    Route("POST", "/subscribe/confirm", subscribe_confirm, "Confirm the code and subscribe", "resident pages",
          public=True, content={_FORM: _CONFIRM, "multipart/form-data": _CONFIRM}, content_required=True,
          success=_page("subscribed"),
          extra_responses={400: _page("unknown request, or no form"), 409: _page("the resident changed; start again"),
                           410: _page("code expired"), 413: _TOO_LARGE, 422: _page("wrong code"),
                           429: _page("too many wrong codes")}),
]  # fmt: skip
