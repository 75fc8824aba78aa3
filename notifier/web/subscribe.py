"""Subscription pages: what a notice board's QR code opens. The rules are in ``notifier.residents.flow``.

    GET  /subscribe?area=<village or town>&topic=   the form: the place (a town's link lets the resident pick
                                                    the village), name, SMS or e-mail and the number or
                                                    address, every topic (the link's ticked), the consent
    POST /subscribe                                 checks the form; queues a 6-digit code by SMS (the code
                                                    page follows) or a signed confirmation link by e-mail
    POST /subscribe/confirm                         the signed request id and the code: subscribes
    GET  /subscribe/link?token=                     the e-mailed link: a page whose button confirms (a GET
                                                    never subscribes: mail scanners open links)
    POST /subscribe/link                            the link's token: subscribes

Every answer is an HTML page (``notifier.web.pages``), never a problem document:

    200  the form, the code page, "check your mail", or "订阅成功"
    400  no form, or the request id / link is not ours     403  the form's CSRF token is not this browser's
    404  GET with a wrong link                               410  the code or link expired: start again
    422  a field is wrong (each error names its field), or the code is wrong (with the attempts left)
    429  too many codes (per address: 1 a minute, 5 a day; per client address: 20 an hour) or wrong codes
    503  no channel of that kind runs in this process's engine

The client address is the TCP peer's: behind a reverse proxy every resident shares the proxy's limit.
Logs carry masked phones only, never names, codes or e-mail addresses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from notifier.api.keys import STORE
from notifier.api.routing import Answer, Param, Route
from notifier.domain.contacts import mask_phone
from notifier.domain.errors import NotifierError
from notifier.domain.models import SubscriberIn
from notifier.residents import flow
from notifier.residents.flow import Ask, Asked, Channel, Check, Limited, NoChannel
from notifier.store import Store
from notifier.store.database import Row
from notifier.web import pages
from notifier.web.client_address import request_client
from notifier.web.pages import PageError, never_500

log = logging.getLogger("notifier.web")

FORM = "subscribe"
CODE_TTL = flow.CODE_TTL
_AREA = re.compile(r"[0-9]{9}|[0-9]{12}")
_LIMITS = {
    "minute": ("验证码已发送，请1分钟后再获取。", "A code was just sent: wait a minute before asking again."),
    "day": ("这个号码或邮箱今天获取验证码的次数已达上限，请明天再试。", "Today's limit for this number."),
    "network": ("当前网络获取验证码过于频繁，请1小时后再试。", "Too many codes from this network: try in an hour."),
}


@dataclass
class FormValues:
    name: str = ""
    channel: str = "sms"
    phone: str = ""
    email: str = ""
    area: str = ""
    topics: list[str] = field(default_factory=list)
    consent: bool = False


@dataclass(frozen=True)
class Board:
    """Where the QR code hangs: a village's board, or a town's (the resident picks the village)."""

    code: str
    place: str  # the town and village, or the town
    county: str
    villages: list[dict[str, str]]  # (code, name) a resident picks from; one for a village's board


async def _board(store: Store, code: str) -> Board | None:
    if not _AREA.fullmatch(code):
        return None
    if len(code) == 12:
        village = await store.village_names(code)
        if village is None:
            return None
        place = f"{village['town'] or ''}{village['village']}"
        return Board(code, place, village["county"] or "", [{"code": code, "name": village["village"]}])
    town = await store.town_names(code)
    if town is None:
        return None
    villages = json.loads(town["villages"])
    return Board(code, town["town"], town["county"] or "", villages) if villages else None


def _consent_text(board: Board) -> tuple[str, str]:
    county = board.county or "当地"
    return (f"我同意接收{county}政府通过短信或电子邮件发送的公益通知，可随时退订（短信回复TD）",
            f"I agree to receive public notices from the {county} government by text message or e-mail; "
            "I can leave at any time (reply TD to a text).")  # fmt: skip


def _wrong_link(request: web.Request) -> web.Response:
    return pages.message(
        request, 404, ("链接有误", "Wrong link"),
        [("这个订阅链接不完整或已失效，没有找到对应的村庄或乡镇。", "This subscription link is wrong or incomplete."),
         ("请重新扫描公开栏通知上的二维码，或联系村委会。", "Please scan the QR code on the notice board again.")],
    )  # fmt: skip


def again_url(area_code: str, topics: Sequence[str] = ()) -> str:
    query = {"area": area_code, **({"topic": topics[0]} if topics else {})}
    return "/subscribe?" + urlencode(query)


def _form_page(
    request: web.Request, board: Board, topics: list[Row], values: FormValues,
    errors: Sequence[PageError] = (), status: int = 200,
) -> web.Response:  # fmt: skip
    switch = pages.switch_url(request) if request.method == "GET" else None
    return pages.render(
        request, "subscribe.html.j2", status, switch=switch,
        title=("订阅通知", "Subscribe"), board=board, topics=topics, values=values, errors=errors,
        form_token=pages.form_token(request, FORM, board.code), consent_text=_consent_text(board),
    )  # fmt: skip


# --- GET /subscribe ------------------------------------------------------------------------------------------------


@never_500
async def subscribe_page(request: web.Request) -> web.Response:
    store = request.app[STORE]
    board = await _board(store, request.query.get("area", "").strip())
    if board is None:
        return _wrong_link(request)
    topics = await store.topic_names()
    wanted = request.query.get("topic", "").strip()
    ticked = [wanted] if any(t["code"] == wanted for t in topics) else []
    area = board.code if len(board.code) == 12 else ""
    return _form_page(request, board, topics, FormValues(topics=ticked, area=area))


# --- POST /subscribe -----------------------------------------------------------------------------------------------


def _validate(values: FormValues, board: Board, known_topics: set[str]) -> tuple[list[PageError], str]:
    """The field errors of a submitted form, and the normalised address when it is valid."""
    errors: list[PageError] = []
    if not values.name:
        errors.append(PageError("name", "请填写姓名", "Please enter your name."))
    elif len(values.name) > 100:
        errors.append(PageError("name", "姓名不能超过100个字", "At most 100 characters."))
    if values.area not in {v["code"] for v in board.villages}:
        errors.append(PageError("area", "请选择所在村庄（社区）", "Please choose your village."))
    address = ""
    channel = Channel.EMAIL if values.channel == "email" else Channel.SMS
    try:
        address = flow.address_of(channel, values.email if channel is Channel.EMAIL else values.phone)
    except ValueError:
        if channel is Channel.SMS:
            errors.append(PageError("phone", "请填写正确的11位手机号码", "Enter an 11-digit mobile number."))
        else:
            errors.append(PageError("email", "请填写正确的电子邮箱", "Enter a valid e-mail address."))
    unknown = [code for code in values.topics if code not in known_topics]
    if unknown:
        errors.append(PageError("topics", "所选内容不存在：" + "、".join(unknown), "Unknown topic."))
    elif not values.topics:
        errors.append(PageError("topics", "请至少选择一项", "Choose at least one topic."))
    if not values.consent:
        errors.append(PageError("consent", "请勾选同意接收通知", "Please tick the consent box."))
    if not errors:
        contact = {"phone": address} if channel is Channel.SMS else {"email": address}
        try:  # the rules the resident must pass at confirmation, checked now
            SubscriberIn.model_validate({"name": values.name, "area_code": values.area, "topics": values.topics,
                                         "channels": [channel.value], **contact})  # fmt: skip
        except ValidationError as exc:
            fields = {"name": "name", "phone": "phone", "email": "email", "area_code": "area", "topics": "topics"}
            for error in exc.errors(include_url=False):
                errors.append(PageError(fields.get(str(error["loc"][0]), "name"), "格式不正确", "Not valid."))
    return errors, address


@never_500
async def subscribe_submit(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    store = request.app[STORE]
    board_code = pages.text(form, "board") or pages.text(form, "area")
    board = await _board(store, board_code)
    if board is None:
        return pages.message(request, 422, ("链接有误", "Wrong link"),
                             [("没有找到对应的村庄，请重新扫码。", "Unknown village: scan the QR code again.")],
                             errors=[PageError("area", "村庄代码不正确", "Unknown village code.")])  # fmt: skip
    topics = await store.topic_names()
    values = FormValues(
        name=pages.text(form, "name"),
        channel="email" if pages.text(form, "channel") == "email" else "sms",
        phone=pages.text(form, "phone", 40),
        email=pages.text(form, "email", 260),
        area=pages.text(form, "area") or board.code,
        topics=list(dict.fromkeys(v.strip()[:64] for v in form.getall("topics", []) if isinstance(v, str)))[:50],
        consent=bool(pages.text(form, "consent")),
    )
    token_error = pages.form_token_error(request, pages.text(form, "form_token", 2048), FORM, board.code)
    if token_error is not None:
        return _form_page(request, board, topics, values, [token_error], 400)
    errors, address = _validate(values, board, {t["code"] for t in topics})
    if errors:
        return _form_page(request, board, topics, values, errors, 422)
    channel = Channel(values.channel)
    ask = Ask("subscribe", channel, address, request_client(request), values.name, values.area, values.topics)
    outcome = await flow.request_code(await pages.outside(request), ask)
    return asked_page(request, outcome, ask, again_url(board.code, values.topics))


def asked_page(request: web.Request, outcome: Asked | Limited | NoChannel, ask: Ask, again: str) -> web.Response:
    """The page after a code or link was asked for: shared with /me."""
    masked = mask_phone(ask.address) if ask.channel is Channel.SMS else "e-mail"
    if isinstance(outcome, NoChannel):
        log.warning("resident %s request refused: no %s channel runs in this process", ask.purpose, ask.channel)
        if ask.channel is Channel.SMS:
            return pages.message(request, 503, ("暂不支持短信", "Text messages unavailable"),
                                 [("本系统目前没有开通短信发送，请改用电子邮箱或联系村委会。",
                                   "Text messages are not available at the moment: use e-mail or ask the "
                                   "village committee.")], again_url=again)  # fmt: skip
        return pages.message(request, 503, ("暂不支持电子邮件", "E-mail unavailable"),
                             [("本系统目前没有开通电子邮件，请改用手机号码。",
                               "E-mail is not available at the moment: use your mobile number.")],
                             again_url=again)  # fmt: skip
    if isinstance(outcome, Limited):
        log.info("resident %s code refused for %s: rate limit", ask.purpose, masked)
        return pages.message(request, 429, ("操作过于频繁", "Too many requests"), [_LIMITS[outcome.limit]],
                             headers={"Retry-After": str(outcome.wait)}, again_url=again)  # fmt: skip
    log.info("resident %s request %d: %s queued for %s", ask.purpose, outcome.request_id,
             "code" if ask.channel is Channel.SMS else "link", masked)  # fmt: skip
    if ask.channel is Channel.EMAIL:
        hours = ("24小时", "24 hours") if ask.purpose == "subscribe" else ("1小时", "an hour")
        return pages.message(request, 200, ("请查收邮件", "Check your e-mail"),
                             [(f"我们已向您填写的电子邮箱发送了一封邮件，请在{hours[0]}内打开其中的链接。",
                               f"We sent an e-mail to the address you gave: open its link within {hours[1]}."),
                              ("没有收到？请检查垃圾邮件，或稍后重新获取。",
                               "Nothing arrived? Look in the spam folder, or ask again later.")],
                             again_url=again)  # fmt: skip
    return code_page(request, outcome.request_token, ask.address, again, ask.purpose)


def code_page(
    request: web.Request, token: str, phone: str, again: str, purpose: str, error: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:  # fmt: skip
    return pages.render(
        request, "subscribe_code.html.j2", status, title=("输入验证码", "Enter the code"),
        masked_phone=mask_phone(phone).removeprefix("+86"), minutes=int(CODE_TTL // 60), request_token=token,
        again_url=again, error=error, action="/subscribe/confirm" if purpose == "subscribe" else "/me/confirm",
        purpose=purpose,
    )  # fmt: skip


# --- POST /subscribe/confirm ---------------------------------------------------------------------------------------


def start_again(request: web.Request, check: Check, again: str) -> web.Response:
    if check is Check.EXPIRED:
        return pages.message(request, 410, ("验证码已过期", "The code has expired"),
                             [("验证码或链接已失效，请重新获取。", "The code or link is no longer valid: ask again.")],
                             again_url=again)  # fmt: skip
    return pages.message(request, 429, ("错误次数过多", "Too many wrong codes"),
                         [("验证码输错次数过多，请重新获取。", "Too many wrong codes: ask for a new one.")],
                         again_url=again)  # fmt: skip


def unknown_request(request: web.Request) -> web.Response:
    return pages.message(request, 400, ("链接已失效", "Unknown request"),
                         [("没有找到这次请求，请重新开始。", "This request is unknown: start again.")])  # fmt: skip


@never_500
async def subscribe_confirm(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    out = await pages.outside(request)
    token = pages.text(form, "request", 2048)
    checked = await flow.check_code(out, token, pages.text(form, "code", 20), "subscribe")
    return await _after_check(request, out, checked, token)


async def _after_check(request: web.Request, out: flow.Outside, checked: flow.Checked, token: str) -> web.Response:
    row = checked.request
    if checked.outcome is Check.UNKNOWN or row is None:
        return unknown_request(request)
    if checked.outcome is Check.DONE:
        return _success(request, row["channel"])
    again = again_url(row["area_code"], json.loads(row["topics"]))
    if checked.outcome in (Check.EXPIRED, Check.SPENT):
        return start_again(request, checked.outcome, again)
    if checked.outcome is Check.MALFORMED:
        error = (f"验证码是6位数字，还可以输入{checked.attempts_left}次。",
                 f"The code has 6 digits; {checked.attempts_left} tries left.")  # fmt: skip
        return code_page(request, token, row["address"], again, "subscribe", error, 422)
    if checked.outcome is Check.WRONG:
        log.info("subscription request %d: wrong code (%s attempts left)", row["id"], checked.attempts_left)
        error = (f"验证码不正确，还可以输入{checked.attempts_left}次。",
                 f"Wrong code; {checked.attempts_left} tries left.")  # fmt: skip
        return code_page(request, token, row["address"], again, "subscribe", error, 422)
    try:
        subscriber = await flow.subscribe(out.store, row, out.now)
    except NotifierError as exc:
        log.warning("subscription request %d could not be confirmed: %s", row["id"], exc.detail)
        return pages.message(request, 409, ("订阅未完成", "Not saved"),
                             [("订阅信息已变化，请重新订阅。", "Something changed meanwhile: start again.")],
                             again_url=again)  # fmt: skip
    if subscriber is None:  # a double tap: the other request did it
        fresh = await out.store.get_subscription_request(row["id"])
        if fresh is None or fresh["state"] != "confirmed":
            return start_again(request, Check.EXPIRED, again)
    else:
        shown = mask_phone(row["address"]) if row["channel"] == "sms" else "e-mail"
        log.info("subscription request %d confirmed for %s", row["id"], shown)
    return _success(request, row["channel"])


def _success(request: web.Request, channel: str) -> web.Response:
    how = ("短信", "text message") if channel == "sms" else ("电子邮件", "e-mail")
    lines = [(f"您已成功订阅，今后将通过{how[0]}收到政府公益通知。", f"You are subscribed: notices will reach you by "
              f"{how[1]}."),
             ("如需修改或退订，请打开“我的通知设置”。", "To change or leave, open “My settings”.")]  # fmt: skip
    return pages.render(request, "message.html.j2", 200, title=("订阅成功", "Subscribed"), lines=lines,
                        again_url="", errors=(), me_link=True)  # fmt: skip


# --- the e-mailed link -----------------------------------------------------------------------------------------------


@never_500
async def link_page(request: web.Request) -> web.Response:
    out = await pages.outside(request)
    token = request.query.get("token", "")[:2048]
    checked = await flow.check_link(out, token)
    if checked.outcome is Check.UNKNOWN or checked.request is None:
        return unknown_request(request) if checked.outcome is Check.UNKNOWN else start_again(
            request, Check.EXPIRED, "/subscribe")
    row = checked.request
    if checked.outcome is not Check.RIGHT:
        return await _after_check(request, out, checked, token)
    return pages.render(
        request, "subscribe_link.html.j2", title=("确认订阅", "Confirm"), link=token,
        form_token=pages.form_token(request, "sublink", row["id"]), switch=pages.switch_url(request),
    )  # fmt: skip


@never_500
async def link_confirm(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    out = await pages.outside(request)
    token = pages.text(form, "link", 2048)
    checked = await flow.check_link(out, token)
    if checked.request is not None:
        error = pages.form_token_error(request, pages.text(form, "form_token", 2048), "sublink",
                                       checked.request["id"])  # fmt: skip
        if error is not None:
            return pages.message(request, 403, ("页面已过期", "Page expired"), [(error.zh, error.en)],
                                 errors=[error])  # fmt: skip
    elif checked.outcome is Check.EXPIRED:
        return start_again(request, Check.EXPIRED, "/subscribe")
    return await _after_check(request, out, checked, token)


def _page(description: str) -> Answer:
    return Answer(description, "text/html", {"type": "string"})


_FORM = "application/x-www-form-urlencoded"
_AREA_CODE = {"type": "string", "pattern": "^([0-9]{9}|[0-9]{12})$"}
_SUBMIT = {
    "type": "object",
    "properties": {
        "board": _AREA_CODE,
        "area": {"type": "string", "pattern": "^[0-9]{12}$"},
        "name": {"type": "string", "maxLength": 100},
        "channel": {"type": "string", "enum": ["sms", "email"]},
        "phone": {"type": "string", "maxLength": 40},
        "email": {"type": "string", "maxLength": 254},
        "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
        "consent": {"type": "string", "description": "any non-empty value: the resident ticked the consent"},
        "form_token": {"type": "string", "description": "the signed token of the form page (CSRF)"},
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
_LINK = {
    "type": "object",
    "properties": {
        "link": {"type": "string", "description": "the token of the e-mailed link"},
        "form_token": {"type": "string", "description": "the signed token of the confirmation page (CSRF)"},
    },
    "required": ["link", "form_token"],
}
_TOO_LARGE = _page("the form is too large")
ROUTES = [
    Route("GET", "/subscribe", subscribe_page, "Subscription page a notice board's QR code opens", "resident pages",
          public=True, success=_page("the form"),
          params=(Param("area", _AREA_CODE, required=True, description="the village or town code"),
                  Param("topic", {"type": "string"}, description="the topic to tick"),
                  Param("lang", {"type": "string"}, description="the page's language: en, else Chinese")),
          extra_responses={404: _page("unknown or missing village or town")}),
    Route("POST", "/subscribe", subscribe_submit, "Send a confirmation code by SMS or a link by e-mail",
          "resident pages", public=True,
          content={_FORM: _SUBMIT, "multipart/form-data": _SUBMIT}, content_required=True,
          success=_page("the page to enter the code, or to look for the e-mail"),
          extra_responses={400: _page("missing, forged or stale form token, or no form"), 413: _TOO_LARGE,
                           422: _page("a field is wrong, each error naming its field"), 429: _page("rate limit"),
                           503: _page("no channel of that kind")}),
    Route("POST", "/subscribe/confirm", subscribe_confirm, "Confirm the code and subscribe", "resident pages",
          public=True, content={_FORM: _CONFIRM, "multipart/form-data": _CONFIRM}, content_required=True,
          success=_page("subscribed"),
          extra_responses={400: _page("unknown request, or no form"), 409: _page("the resident changed; start again"),
                           410: _page("code expired"), 413: _TOO_LARGE, 422: _page("wrong code"),
                           429: _page("too many wrong codes")}),
    Route("GET", "/subscribe/link", link_page, "The e-mailed confirmation link: a page whose button subscribes",
          "resident pages", public=True, success=_page("the confirmation page"),
          params=(Param("token", {"type": "string"}, required=True, description="the link's signed token"),),
          extra_responses={400: _page("forged or unknown link"), 410: _page("expired link")}),
    Route("POST", "/subscribe/link", link_confirm, "Confirm an e-mailed link and subscribe", "resident pages",
          public=True, content={_FORM: _LINK, "multipart/form-data": _LINK}, content_required=True,
          success=_page("subscribed"),
          extra_responses={400: _page("forged or unknown link, or no form"), 403: _page("CSRF token refused"),
                           409: _page("the resident changed; start again"), 410: _page("expired link"),
                           413: _TOO_LARGE}),
]  # fmt: skip
