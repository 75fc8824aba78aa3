"""``/me``: a resident's own settings, opened from a signed, expiring link. The rules are in
``notifier.residents.flow``.

    GET  /me                 the page to ask for a link: by mobile number (a code by SMS) or by e-mail (the link)
    POST /me/ask             queues the code or the link; says the same whether or not the address is known
    POST /me/confirm         the code: on success, a 303 to the /me link
    GET  /me?token=…         the settings: topics, channels and their order, quiet hours, language; and leaving
    POST /me                 saves them (audited ``subscriber.update`` by ``web:me``)
    POST /me/delete          erases the resident (``subscriber.delete``; delivery counts stay, anonymous)

A link is ``sign({"p": "me", "s": <resident id>}, 1 hour)``: a forged or edited one answers 403, an expired
one 410, a resident erased since 404; each a page with a way to ask again. The forms carry this browser's
CSRF token (``notifier.web.pages``) bound to the resident.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from notifier.api.keys import STORE
from notifier.api.routing import Answer, Param, Route
from notifier.domain.contacts import mask_phone
from notifier.domain.errors import NotFound, NotifierError
from notifier.domain.models import Subscriber
from notifier.residents import flow
from notifier.residents.flow import Ask, Channel, Check, MeLinkError, MySettings
from notifier.web import pages
from notifier.web.client_address import request_client
from notifier.web.pages import PageError, never_500
from notifier.web.subscribe import asked_page, code_page, start_again, unknown_request

log = logging.getLogger("notifier.web")

ASK_FORM, SETTINGS_FORM, DELETE_FORM = "me-ask", "me", "me-delete"
CHANNEL_NAMES = {"sms": ("短信", "Text message"), "email": ("电子邮件", "E-mail"), "wechat": ("微信", "WeChat"),
                 "wecom": ("企业微信", "WeCom")}  # fmt: skip
_ERRORS = {
    ("topics", "unknown"): ("所选内容不存在", "Unknown topic."),
    ("channels", "unknown"): ("接收方式有误，每个顺序只能选一种", "Each place in the order can hold one channel."),
    ("channels", "empty"): ("请至少选择一种接收方式", "Choose at least one channel."),
    ("quiet_hours", "both"): ("请同时填写开始和结束时间，或都不填", "Give both times, or neither."),
    ("quiet_hours", "format"): ("时间格式应为 22:00", "Use 24-hour times like 22:00."),
    ("language", "unknown"): ("请选择中文或English", "Choose 中文 or English."),
}


# --- asking for a link ---------------------------------------------------------------------------------------------


def _ask_page(request: web.Request, values: dict[str, str], errors: list[PageError], status: int = 200) -> web.Response:
    return pages.render(
        request, "me_ask.html.j2", status, switch=pages.switch_url(request) if request.method == "GET" else None,
        title=("我的通知设置", "My notice settings"), values=values, errors=errors,
        form_token=pages.form_token(request, ASK_FORM, "me"),
    )  # fmt: skip


def _link_refused(request: web.Request, error: MeLinkError) -> web.Response:
    if error.expired:
        return pages.message(request, 410, ("链接已过期", "This link has expired"),
                             [("为保护您的信息，设置链接1小时后失效。", "Settings links work for an hour, to keep "
                               "your data safe."), ("请重新获取链接。", "Please ask for a new link.")],
                             again_url="/me")  # fmt: skip
    return pages.message(request, 403, ("链接无效", "This link is not valid"),
                         [("这个链接不完整或被修改过，无法打开设置。", "The link is incomplete or was changed."),
                          ("请重新获取链接。", "Please ask for a new link.")], again_url="/me")  # fmt: skip


@never_500
async def me_page(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if token is None:
        return _ask_page(request, {"channel": "sms", "phone": "", "email": ""}, [])
    try:
        subscriber_id = flow.read_me_token(token[:4096], pages.secret(request), pages.now(request))
    except MeLinkError as exc:
        return _link_refused(request, exc)
    try:
        subscriber = await request.app[STORE].get_subscriber(subscriber_id)
    except NotFound:
        return _gone(request)
    return await _settings_page(request, token, subscriber, _current(subscriber))


@never_500
async def me_ask(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    channel = Channel.EMAIL if pages.text(form, "channel") == "email" else Channel.SMS
    values = {"channel": channel.value, "phone": pages.text(form, "phone", 40), "email": pages.text(form, "email", 260)}
    error = pages.form_token_error(request, pages.text(form, "form_token", 2048), ASK_FORM, "me")
    if error is not None:
        return _ask_page(request, values, [error], 400)
    try:
        address = flow.address_of(channel, values["email"] if channel is Channel.EMAIL else values["phone"])
    except ValueError:
        field = "email" if channel is Channel.EMAIL else "phone"
        message = (("请填写正确的电子邮箱", "Enter a valid e-mail address.") if channel is Channel.EMAIL
                   else ("请填写正确的11位手机号码", "Enter an 11-digit mobile number."))  # fmt: skip
        return _ask_page(request, values, [PageError(field, *message)], 422)
    ask = Ask("me", channel, address, request_client(request))
    outcome = await flow.request_code(await pages.outside(request), ask)
    return asked_page(request, outcome, ask, "/me")


@never_500
async def me_confirm(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    out = await pages.outside(request)
    token = pages.text(form, "request", 2048)
    checked = await flow.check_code(out, token, pages.text(form, "code", 20), "me")
    row = checked.request
    if checked.outcome is Check.UNKNOWN or row is None:
        return unknown_request(request)
    if checked.outcome in (Check.EXPIRED, Check.SPENT, Check.DONE):
        return start_again(request, Check.SPENT if checked.outcome is Check.SPENT else Check.EXPIRED, "/me")
    if checked.outcome in (Check.MALFORMED, Check.WRONG):
        left = checked.attempts_left
        error = ((f"验证码是6位数字，还可以输入{left}次。", f"The code has 6 digits; {left} tries left.")
                 if checked.outcome is Check.MALFORMED
                 else (f"验证码不正确，还可以输入{left}次。", f"Wrong code; {left} tries left."))  # fmt: skip
        return code_page(request, token, row["address"], "/me", "me", error, 422)
    subscriber_id = await flow.claim_me_request(out, row)
    if subscriber_id is None:
        return start_again(request, Check.EXPIRED, "/me")
    log.info("me request %d confirmed for %s", row["id"], mask_phone(row["address"]))
    link = "/me?token=" + quote(flow.me_token(out.secret, subscriber_id, out.now), safe="")
    raise web.HTTPSeeOther(link, headers=pages.HEADERS)


# --- the settings --------------------------------------------------------------------------------------------------


def _current(subscriber: Subscriber) -> MySettings:
    quiet = subscriber.quiet_hours
    usable = flow.usable_channels(subscriber)
    return MySettings(
        topics=list(subscriber.topics),
        channels=[c for c in subscriber.channels if c in usable and c not in subscriber.opt_out_channels],
        quiet_start=quiet.start if quiet else "", quiet_end=quiet.end if quiet else "",
        language=subscriber.language if subscriber.language in flow.LANGUAGES else "zh",
    )  # fmt: skip


async def _settings_page(
    request: web.Request, token: str, subscriber: Subscriber, values: MySettings,
    errors: list[PageError] | None = None, status: int = 200, saved: bool = False,
) -> web.Response:  # fmt: skip
    topics = await request.app[STORE].topic_names()
    usable = flow.usable_channels(subscriber)
    ranks = {kind: values.channels.index(kind) + 1 if kind in values.channels else 0 for kind in usable}
    return pages.render(
        request, "me.html.j2", status, switch=pages.switch_url(request) if request.method == "GET" else None,
        title=("我的通知设置", "My notice settings"), token=token, subscriber=subscriber, values=values,
        topics=topics, usable=usable, ranks=ranks, channel_names=CHANNEL_NAMES, errors=errors or [], saved=saved,
        masked_phone=mask_phone(subscriber.phone).removeprefix("+86") if subscriber.phone else "",
        form_token=pages.form_token(request, SETTINGS_FORM, subscriber.id),
        delete_token=pages.form_token(request, DELETE_FORM, subscriber.id),
    )  # fmt: skip


def _gone(request: web.Request) -> web.Response:
    return pages.message(request, 404, ("没有找到您的订阅", "No subscription found"),
                         [("这个链接对应的订阅已不存在（可能已删除）。", "The subscription of this link no longer "
                           "exists (it may have been deleted).")], again_url="/subscribe")  # fmt: skip


async def _resident_of_form(
    request: web.Request, form: MultiDictProxy[Any], form_name: str
) -> tuple[str, Subscriber] | web.Response:
    """The link token and the resident, or a refusal page when the link or the CSRF token is not good."""
    token = pages.text(form, "token", 4096)
    try:
        subscriber_id = flow.read_me_token(token, pages.secret(request), pages.now(request))
    except MeLinkError as exc:
        return _link_refused(request, exc)
    error = pages.form_token_error(request, pages.text(form, "form_token", 2048), form_name, subscriber_id)
    if error is not None:
        return pages.message(request, 403, ("页面已过期", "Page expired"), [(error.zh, error.en)], errors=[error],
                             again_url="/me?token=" + quote(token, safe=""))  # fmt: skip
    try:
        return token, await request.app[STORE].get_subscriber(subscriber_id)
    except NotFound:
        return _gone(request)


@never_500
async def me_save(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    found = await _resident_of_form(request, form, SETTINGS_FORM)
    if isinstance(found, web.Response):
        return found
    token, subscriber = found
    ranked = []
    for kind in CHANNEL_NAMES:  # a rank for a channel without an address is refused by settings_errors
        raw = pages.text(form, f"rank_{kind}", 3)
        if raw and raw != "0":
            ranked.append((int(raw) if raw in ("1", "2", "3", "4") else 99, kind))
    wanted = MySettings(
        topics=list(dict.fromkeys(v.strip()[:64] for v in form.getall("topics", []) if isinstance(v, str)))[:50],
        channels=[kind for _, kind in sorted(ranked)],
        quiet_start=pages.text(form, "quiet_start", 10), quiet_end=pages.text(form, "quiet_end", 10),
        language=pages.text(form, "language", 10) or "zh",
    )  # fmt: skip
    ranks = [rank for rank, _ in ranked]
    known = {row["code"] for row in await request.app[STORE].topic_names()}
    problems = flow.settings_errors(wanted, subscriber, known)
    if len(set(ranks)) != len(ranks) or any(rank > 4 for rank in ranks):
        problems.append(("channels", "unknown"))
    if problems:
        errors = [PageError(field, *_ERRORS[(field, kind)]) for field, kind in dict.fromkeys(problems)]
        return await _settings_page(request, token, subscriber, wanted, errors, 422)
    try:
        updated = await flow.update_settings(request.app[STORE], subscriber.id, wanted)
    except NotifierError as exc:
        log.warning("me settings of resident %d not saved: %s", subscriber.id, exc.detail)
        error = PageError("topics", "保存失败，请重试", "Not saved; try again.")
        return await _settings_page(request, token, subscriber, wanted, [error], 409)
    log.info("me settings saved for resident %d", subscriber.id)
    return await _settings_page(request, token, updated, _current(updated), saved=True)


@never_500
async def me_delete(request: web.Request) -> web.Response:
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    found = await _resident_of_form(request, form, DELETE_FORM)
    if isinstance(found, web.Response):
        return found
    token, subscriber = found
    if not pages.text(form, "confirm"):
        error = PageError("confirm", "请勾选“我确认删除”", "Tick “I am sure” to delete.")
        return await _settings_page(request, token, subscriber, _current(subscriber), [error], 422)
    await flow.leave(request.app[STORE], subscriber.id)
    log.info("resident %d deleted themselves", subscriber.id)
    return pages.message(request, 200, ("已删除", "Deleted"),
                         [("您的姓名和联系方式已删除，今后不会再收到通知。", "Your name and contact details are "
                           "erased: you will receive no more notices."),
                          ("如需再次订阅，请扫描公开栏上的二维码。", "To subscribe again, scan a notice board's "
                           "QR code.")])  # fmt: skip


def _page(description: str) -> Answer:
    return Answer(description, "text/html", {"type": "string"})


_FORM = "application/x-www-form-urlencoded"
_ASK = {
    "type": "object",
    "properties": {
        "channel": {"type": "string", "enum": ["sms", "email"]},
        "phone": {"type": "string", "maxLength": 40},
        "email": {"type": "string", "maxLength": 254},
        "form_token": {"type": "string", "description": "the signed token of the page (CSRF)"},
    },
    "required": ["form_token"],
}
_CONFIRM = {
    "type": "object",
    "properties": {"request": {"type": "string"}, "code": {"type": "string"}},
    "required": ["request", "code"],
}
_SAVE = {
    "type": "object",
    "properties": {
        "token": {"type": "string", "description": "the /me link's token"},
        "form_token": {"type": "string", "description": "the signed token of the page (CSRF)"},
        "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
        "rank_sms": {"type": "string"}, "rank_email": {"type": "string"}, "rank_wechat": {"type": "string"},
        "rank_wecom": {"type": "string"},
        "quiet_start": {"type": "string"}, "quiet_end": {"type": "string"},
        "language": {"type": "string", "enum": ["zh", "en"]},
    },
    "required": ["token", "form_token"],
}
_DELETE = {
    "type": "object",
    "properties": {"token": {"type": "string"}, "form_token": {"type": "string"}, "confirm": {"type": "string"}},
    "required": ["token", "form_token"],
}
_LINK_REFUSED = {403: _page("forged or edited link, or the CSRF token refused"), 404: _page("resident erased"),
                 410: _page("expired link")}  # fmt: skip
ROUTES = [
    Route("GET", "/me", me_page, "A resident's settings (with ?token=) or the page to ask for the link",
          "resident pages", public=True, success=_page("the settings, or the page to ask for a link"),
          params=(Param("token", {"type": "string"}, description="the signed /me link's token"),
                  Param("lang", {"type": "string"}, description="the page's language: en, else Chinese")),
          extra_responses=_LINK_REFUSED),
    Route("POST", "/me/ask", me_ask, "Send a /me code by SMS or the /me link by e-mail", "resident pages",
          public=True, content={_FORM: _ASK, "multipart/form-data": _ASK}, content_required=True,
          success=_page("the code page, or 'check your e-mail'"),
          extra_responses={400: _page("CSRF token refused, or no form"), 413: _page("the form is too large"),
                           422: _page("the phone or address is wrong"), 429: _page("rate limit"),
                           503: _page("no channel of that kind")}),
    Route("POST", "/me/confirm", me_confirm, "Check the /me code; 303 to the settings", "resident pages",
          public=True, content={_FORM: _CONFIRM, "multipart/form-data": _CONFIRM}, content_required=True,
          success=_page("never: a right code answers 303"),
          extra_responses={303: _page("to the /me link"), 400: _page("unknown request, or no form"),
                           410: _page("code expired"), 413: _page("the form is too large"), 422: _page("wrong code"),
                           429: _page("too many wrong codes")}),
    Route("POST", "/me", me_save, "Save a resident's settings", "resident pages", public=True,
          content={_FORM: _SAVE, "multipart/form-data": _SAVE}, content_required=True, success=_page("saved"),
          extra_responses={**_LINK_REFUSED, 400: _page("no form"), 409: _page("not saved"),
                           413: _page("the form is too large"), 422: _page("a field is wrong")}),
    Route("POST", "/me/delete", me_delete, "A resident deletes themselves", "resident pages", public=True,
          content={_FORM: _DELETE, "multipart/form-data": _DELETE}, content_required=True, success=_page("deleted"),
          extra_responses={**_LINK_REFUSED, 400: _page("no form"), 413: _page("the form is too large"),
                           422: _page("not confirmed")}),
]  # fmt: skip
