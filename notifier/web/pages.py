"""What every resident page shares: rendering, headers, the language switch, CSRF tokens, never a 500.

Rendering: jinja2 with autoescape (``templates/web``); every page gets ``t(zh, en)`` for its words, Chinese
first; ``?lang=en`` (or ``zh``) switches and is remembered in the ``rp_lang`` cookie.

CSRF (the resident has no login): a random per-browser cookie ``rp_csrf`` (HttpOnly, SameSite=Lax, Secure
over https) is set by the first page; every form carries a signed token (``notifier.signing``) naming the
form, what it is bound to (a village, a resident) and a hash of that cookie. A POST whose token is missing,
forged, stale, of another form or of another browser is refused before anything is read or sent.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy
from pydantic import SecretStr

from notifier.api.keys import ENGINE, SETTINGS, STORE
from notifier.api.notices import UNOPENED_ADAPTERS
from notifier.api.wake import wake
from notifier.engine.context import aliases_of
from notifier.residents.flow import Outside
from notifier.signing import ExpiredToken, TokenError, sign, verify
from notifier.web.page_environment import page_environment

log = logging.getLogger("notifier.web")

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "web"
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("subscribe_clock")  # optional; time.time when unset
CSRF_COOKIE, LANG_COOKIE = "rp_csrf", "rp_lang"
_CSRF_KEY: web.RequestKey[str] = web.RequestKey("resident_csrf")
_LANG_KEY: web.RequestKey[str] = web.RequestKey("resident_lang")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # /me and confirmation links carry a token in the URL
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageError:
    """A field's error, in both languages; ``label`` pair names the field."""

    field: str
    zh: str
    en: str = ""


_LABELS = {
    "name": ("姓名", "Name"),
    "phone": ("手机号码", "Mobile number"),
    "email": ("电子邮箱", "E-mail address"),
    "contact": ("联系方式", "Contact"),
    "area": ("村庄", "Village"),
    "topics": ("订阅内容", "Topics"),
    "consent": ("同意接收", "Consent"),
    "form_token": ("页面", "Page"),
    "code": ("验证码", "Code"),
    "channels": ("接收方式", "Channels"),
    "quiet_hours": ("免打扰时段", "Quiet hours"),
    "language": ("语言", "Language"),
    "confirm": ("确认", "Confirmation"),
}


def now(request: web.Request) -> float:
    return request.app.get(CLOCK, time.time)()


def secret(request: web.Request) -> SecretStr:
    return request.app[SETTINGS].security.signing_secret


async def outside(request: web.Request) -> Outside:
    """The flow's view of this process: store, secret, clock, and the aliases a message is queued on. A
    process without an engine (an API node) queues on the configured aliases; the workers elsewhere send."""
    settings = request.app[SETTINGS]
    engine = request.app.get(ENGINE)
    channels = engine.ctx.channels if engine is not None else await request.app[UNOPENED_ADAPTERS].get(settings)

    def first_alias(kind: str) -> str | None:
        found = aliases_of(settings, channels, kind)
        return found[0] if found else None

    return Outside(
        store=request.app[STORE], secret=secret(request), public_url=settings.server.public_url,
        now=now(request), first_alias=first_alias, wake=lambda: wake(request.app),
    )  # fmt: skip


# --- language ------------------------------------------------------------------------------------------------------


def language(request: web.Request) -> str:
    if _LANG_KEY in request:
        return request[_LANG_KEY]
    wanted = request.query.get("lang", "") or request.cookies.get(LANG_COOKIE, "")
    request[_LANG_KEY] = "en" if wanted == "en" else "zh"
    return request[_LANG_KEY]


def switch_url(request: web.Request) -> str:
    """This GET page in the other language (POST answers link to their form's first page instead)."""
    query = {k: v for k, v in request.query.items() if k != "lang"}
    query["lang"] = "zh" if language(request) == "en" else "en"
    return f"{request.path}?{urlencode(query)}"


# --- CSRF ----------------------------------------------------------------------------------------------------------


def _browser(request: web.Request) -> str:
    """This browser's CSRF cookie, made (and set on the answer by ``render``) when it has none."""
    if _CSRF_KEY not in request:
        request[_CSRF_KEY] = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return request[_CSRF_KEY]


def _cookie_hash(value: str) -> str:
    return hashlib.sha256(f"rp-csrf:{value}".encode()).hexdigest()[:32]


def form_token(request: web.Request, form: str, bound: str | int, ttl: float = 3600.0) -> str:
    claims = {"p": f"form:{form}", "b": bound, "c": _cookie_hash(_browser(request))}
    return sign(claims, secret(request), ttl, now=now(request))


def form_token_error(request: web.Request, token: str, form: str, bound: str | int) -> PageError | None:
    """None when ``token`` is this browser's live token of this form for this village or resident."""
    if not token:
        return PageError("form_token", "请通过正常打开的页面提交", "Please submit the form from its page.")
    try:
        claims = verify(token, secret(request), now=now(request))
    except ExpiredToken:
        return PageError("form_token", "页面已打开超过1小时，请核对后再次提交",
                         "The page was open for over an hour: check and submit again.")  # fmt: skip
    except TokenError:
        return PageError("form_token", "页面已损坏，请重新打开", "The page is damaged: open it again.")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if claims.get("p") != f"form:{form}" or claims.get("b") != bound:
        return PageError("form_token", "页面已损坏，请重新打开", "The page is damaged: open it again.")
    if not cookie or claims.get("c") != _cookie_hash(cookie):
        return PageError("form_token", "页面已过期，请重新打开后提交",
                         "This page is not from this browser session: open it again.")  # fmt: skip
    return None


# --- rendering -----------------------------------------------------------------------------------------------------


def label(field: str, lang: str) -> str:
    zh, en = _LABELS.get(field, (field, field))
    return en if lang == "en" else zh


def render(
    request: web.Request,
    template: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    switch: str | None = None,
    **context: Any,
) -> web.Response:
    lang = language(request)

    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    text = page_environment(TEMPLATE_DIR).get_template(template).render(
        t=t, lang=lang, label=lambda field: label(field, lang), switch_url=switch, **context
    )
    response = web.Response(
        status=status, text=text, content_type="text/html", charset="utf-8", headers={**HEADERS, **(headers or {})}
    )
    secure = request.secure or request.app[SETTINGS].server.public_url.startswith("https://")
    if _CSRF_KEY in request and request.cookies.get(CSRF_COOKIE) != request[_CSRF_KEY]:
        response.set_cookie(CSRF_COOKIE, request[_CSRF_KEY], httponly=True, samesite="Lax", secure=secure, path="/")
    if request.query.get("lang") in ("zh", "en") and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, samesite="Lax", secure=secure, path="/", max_age=365 * 86400)
    return response


def message(
    request: web.Request,
    status: int,
    title: tuple[str, str],
    lines: Sequence[tuple[str, str]],
    *,
    again_url: str = "",
    errors: Sequence[PageError] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A short page: a heading, a few lines, optionally the field errors and a "start again" link."""
    return render(request, "message.html.j2", status, headers, title=title, lines=lines, again_url=again_url,
                  errors=errors)  # fmt: skip


async def read_form(request: web.Request) -> MultiDictProxy[Any] | None:
    try:
        return await request.post()
    except (ValueError, AssertionError, UnicodeDecodeError, HttpProcessingError):
        return None


def text(form: Mapping[str, Any], key: str, limit: int = 200) -> str:
    value = form.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def bad_form(request: web.Request) -> web.Response:
    return message(request, 400, ("提交失败", "Not sent"), [("没有收到表单内容，请重新打开页面填写。",
                                                           "The form could not be read: open the page again.")])


def never_500(handler: Handler) -> Handler:
    """A resident never sees a stack trace or a JSON problem: any failure is a short HTML page."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return message(request, 413, ("内容过长", "Too large"),
                           [("提交的内容过长，请返回修改后再试。", "The form is too large.")])  # fmt: skip
        except web.HTTPException:
            raise
        except Exception:
            log.exception("resident page %s %s failed", request.method, request.path)
            return message(request, 500, ("系统繁忙", "Something went wrong"),
                           [("系统暂时出现问题，请稍后再试。", "Something went wrong; try again later.")])  # fmt: skip

    return wrapped
