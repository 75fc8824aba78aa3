"""The public feedback form of a published notice (意见建议、投诉举报): no login, rate-limited.

    GET  /public/notices/{id}/feedback   the form on its own page (the notice's title and department); the
                                          public notice page includes the same form (``feedback_form_context``
                                          and ``templates/web/feedback_form.html.j2``)
    POST /public/notices/{id}/feedback   takes the item (``engine.feedback.take_feedback``): the notice's
                                          department sees it in its inbox

Fields: ``category`` (opinion 意见建议 | complaint 投诉举报), ``text`` (1-1000 characters), optional ``name``
and ``phone``; a phone that is a registered resident's links the item to that resident, and the answer goes
to them by SMS (the phone is not verified: docs/feedback.md says what that means).

Safety: the form carries the resident pages' signed token (``notifier.web.pages``, 1 day, naming the notice
and bound to the browser's ``rp_csrf`` cookie), so a POST needs the page first, in the same browser; a POST
whose ``Origin`` is another site is refused (403). Each client address may send ``[feedback] form_per_hour`` items
an hour (429 beyond); the address is kept only as a keyed hash (HMAC with the signing secret). Only a notice
that is approved or went out (scheduled, sending or done: what the public pages show) and is no reply to a
resident takes feedback, and only when the public pages show it (a public notice or a publicity list);
another is 404, whatever its id. The public notice pages link here (``takes_feedback``), and a
publicity list's printout prints this address with its QR code (``channels.bulletin_render.feedback_url``).

Every answer is an HTML page: 200 (form, thanks), 400 (token missing, forged or expired: the form comes back
with a fresh one), 403 (foreign origin), 404, 422 (a field is wrong, named), 429.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Answer, Route
from notifier.config import Settings
from notifier.domain.contacts import normalise_phone
from notifier.domain.errors import NotFound
from notifier.domain.models import Notice
from notifier.domain.text import ascii_digits
from notifier.engine.feedback import clean_text, take_feedback
from notifier.store.feedback import NewFeedback
from notifier.web import pages
from notifier.web.client_address import request_client
from notifier.web.pages import PageError, never_500
from notifier.web.public_pages import mask_personal

log = logging.getLogger("notifier.web")

FORM = "feedback"
FORM_TTL = 86400.0
OPEN_STATES = frozenset({"approved", "scheduled", "sending", "done"})
MAX_FORM_BYTES = 16 * 1024


def action_path(notice_id: int) -> str:
    return f"/public/notices/{notice_id}/feedback"


def feedback_form_context(request: web.Request, notice_id: int, values: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``feedback_form.html.j2`` needs: include it in a page rendered with ``notifier.web.pages.render``
    (which sets the browser's CSRF cookie the form's token is bound to) with this context."""
    return {"feedback_action": action_path(notice_id),
            "feedback_token": pages.form_token(request, FORM, notice_id, FORM_TTL),
            "feedback_values": {"category": "", "text": "", "name": "", "phone": "", **(values or {})}}


def takes_feedback(notice: Notice) -> bool:
    """Whether the form takes feedback on ``notice`` (the pages that link to it ask this): only a notice the
    public pages show (public, or a publicity list), so that guessing ids reveals nothing of the others."""
    published = notice.public or notice.publicity is not None
    return published and notice.state.value in OPEN_STATES and notice.answers_feedback is None


async def _open_notice(request: web.Request) -> Notice | None:
    raw = request.match_info["id"]
    if not ascii_digits(raw) or len(raw) > 18:
        return None
    try:
        notice = await request.app[STORE].get_notice(int(raw))
    except NotFound:
        return None
    return notice if takes_feedback(notice) else None


def _not_found(request: web.Request) -> web.Response:
    return pages.message(request, 404, ("没有这条通知", "No such notice"),
                         [("没有找到这条已发布的通知。", "No such published notice.")])


async def _form(request: web.Request, notice: Notice, status: int = 200, values: dict[str, str] | None = None,
                errors: list[PageError] | None = None) -> web.Response:
    department = await request.app[STORE].get_department(notice.department)
    return pages.render(request, "feedback.html.j2", status, title=("意见建议", "Feedback"),
                        notice_title=mask_personal(notice.title), department_name=department.name, errors=errors or [],
                        **feedback_form_context(request, notice.id, values))


@never_500
async def feedback_page(request: web.Request) -> web.StreamResponse:
    notice = await _open_notice(request)
    return _not_found(request) if notice is None else await _form(request, notice)


def _foreign_origin(request: web.Request, settings: Settings) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    public = urlsplit(settings.server.public_url)
    allowed = {f"{request.scheme}://{request.host}", f"{public.scheme}://{public.netloc}"}
    return origin.rstrip("/") not in allowed


def source_hash(settings: Settings, request: web.Request) -> str:
    """A keyed hash of the client address: enough to count its forms, useless to find who sent them."""
    key = settings.security.signing_secret.get_secret_value().encode()
    return hmac.new(key, f"feedback-source\n{request_client(request)}".encode(), hashlib.sha256).hexdigest()[:32]


def _errors(values: dict[str, str]) -> list[PageError]:
    errors = []
    if values["category"] not in ("opinion", "complaint"):
        errors.append(PageError("category", "请选择意见建议或投诉举报", "Choose opinion or complaint."))
    if not values["text"]:
        errors.append(PageError("text", "请填写内容", "Write what you want to tell us."))
    elif len(values["text"]) > 1000:
        errors.append(PageError("text", "内容不能超过1000字", "At most 1000 characters."))
    if len(values["name"]) > 50:
        errors.append(PageError("name", "姓名不能超过50字", "At most 50 characters."))
    if values["phone"]:
        try:
            values["phone"] = normalise_phone(values["phone"])
        except ValueError:
            errors.append(PageError("phone", "手机号码格式不正确", "Not a valid mobile number."))
    return errors


@never_500
async def feedback_post(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    notice = await _open_notice(request)
    if notice is None:
        return _not_found(request)
    if _foreign_origin(request, settings):
        return pages.message(request, 403, ("无法提交", "Not sent"),
                             [("请在本网站的页面上提交。", "Submit the form from this site's own page.")])
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return pages.message(request, 413, ("内容过长", "Too large"),
                             [("提交的内容过长，请返回修改后再试。", "The form is too large.")])
    form = await pages.read_form(request)
    if form is None:
        return pages.bad_form(request)
    values = {name: clean_text(str(form.get(name, ""))) for name in ("category", "text", "name", "phone")}
    token_error = pages.form_token_error(request, str(form.get("form_token", "")), FORM, notice.id)
    if token_error is not None:
        return await _form(request, notice, 400, values, [token_error])
    errors = _errors(values)
    if errors:
        return await _form(request, notice, 422, values, errors)
    store = request.app[STORE]
    source = source_hash(settings, request)
    received = datetime.now(UTC)
    too_many = ("您提交得太频繁了，请一小时后再试。", "Too many submissions; try again in an hour.")
    async with store.db.transaction():  # counted and taken at once: forms sent together are counted one by one
        await store.lock_feedback_source(source)
        if await store.recent_feedback_from(source, received - timedelta(hours=1)) >= settings.feedback.form_per_hour:
            return pages.message(request, 429, ("提交太频繁", "Too many"), [too_many])
        phone = values["phone"] or None
        subscriber_id = await store.find_subscriber_by_phone(phone) if phone else None
        item = NewFeedback(channel="form", text=values["text"], category=values["category"], notice_id=notice.id,
                           department=notice.department, subscriber_id=subscriber_id, contact=phone,
                           contact_name=values["name"] or None, source_hash=source)
        await take_feedback(store, settings, item, actor="web:feedback", received=received)
    thanks = ("谢谢，您的意见已转交发布通知的部门办理。", "Thank you: your feedback reached the department.")
    return pages.message(request, 200, ("已收到", "Received"), [thanks])


_HTML = Answer("an HTML page", "text/html", {"type": "string"})
_FORM = {
    "type": "object",
    "properties": {
        "form_token": {"type": "string"}, "category": {"type": "string", "enum": ["opinion", "complaint"]},
        "text": {"type": "string", "maxLength": 1000}, "name": {"type": "string"}, "phone": {"type": "string"},
    },
}
ROUTES = [
    Route("GET", "/public/notices/{id}/feedback", feedback_page, "The feedback form of a published notice",
          "public", public=True, success=_HTML, extra_responses={404: Answer("no such published notice", "text/html")}),
    Route("POST", "/public/notices/{id}/feedback", feedback_post, "Send feedback on a published notice (no login)",
          "public", public=True, success=_HTML, content={"application/x-www-form-urlencoded": _FORM},
          extra_responses={
              400: Answer("the form token is missing, forged or expired", "text/html"),
              403: Answer("posted from another site", "text/html"),
              404: Answer("no such published notice", "text/html"),
              413: Answer("the form is too large", "text/html"),
              422: Answer("a field is wrong", "text/html"),
              429: Answer("too many forms from this address this hour", "text/html"),
          }),
]

__all__ = ["ROUTES", "action_path", "feedback_form_context"]
