"""How a console page is written: the ``page`` decorator and the ``Console`` it hands the handler.

    @page(roles=(Role.APPROVER,))
    async def queue(request: web.Request, console: Console) -> web.StreamResponse:
        return console.render("queue.html", notices=...)

The decorator gives every page the same rules: a signed-in staff member (else a redirect to the login
page), the forced password change, the roles allowed (admins always), the CSRF token on every POST
(403 without it), the language, the security headers, and errors of the domain shown as a page with
their status (never a problem document, never a 500 for what a user sent). See docs/console.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from notifier.api.keys import STORE
from notifier.console import security
from notifier.console.i18n import COOKIE, HTML_LANG, Language, Translator, request_language
from notifier.domain.enums import Role
from notifier.domain.errors import NotifierError
from notifier.domain.staff import StaffMember, StaffSession
from notifier.store import Store
from notifier.web.page_environment import page_environment

TEMPLATES = Path(__file__).parent / "templates"
SESSION_TTL = 8 * 3600.0  # a working day; then sign in again
SESSION_IDLE = 3600.0  # an hour without a request ends the session
LOGIN_PATH, HOME_PATH, PASSWORD_PATH = "/console/login", "/console", "/console/password"
# A GET is not protected by the CSRF token: a page of another site may send the browser, with its session cookie
# (SameSite=Lax lets a top-level navigation carry it), to a download, which then lands in the staff member's
# downloads and writes the audit entry in their name. Browsers say where a request comes from in Sec-Fetch-Site.
OTHER_SITES = ("cross-site", "same-site")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("console_clock")  # optional; time.time when unset
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PageHandler = Callable[[web.Request, "Console"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class NavItem:
    """An entry of the navigation bar, shown to the roles named (all roles when empty; admins always)."""

    path: str
    zh: str
    en: str
    roles: tuple[Role, ...] = ()

    def visible_to(self, staff: StaffMember) -> bool:
        return not self.roles or staff.role in self.roles or staff.role is Role.ADMIN


NAV: web.AppKey[Sequence[NavItem]] = web.AppKey("console_nav")


@dataclass
class Console:
    """What a page handler gets: the request's staff member (None only on public pages), its CSRF token,
    its language and translator, and the parsed form of a POST."""

    request: web.Request
    session: StaffSession | None
    language: Language
    form: MultiDictProxy[Any] = field(default_factory=lambda: MultiDictProxy(MultiDict()))
    login_token: str | None = None  # the login form's CSRF value (public pages only)

    def field(self, name: str, limit: int = 10_000) -> str:
        """A text field of the posted form ("" when absent or a file), cut at ``limit`` characters."""
        value = self.form.get(name, "")
        return value[:limit] if isinstance(value, str) else ""

    @property
    def t(self) -> Translator:
        return Translator(self.language)

    @property
    def staff(self) -> StaffMember:
        if self.session is None:
            raise RuntimeError("a public console page has no staff member")
        return self.session.staff

    @property
    def csrf(self) -> str:
        if self.session is not None:
            return self.session.csrf_token
        return self.login_token or ""

    @property
    def store(self) -> Store:
        return self.request.app[STORE]

    def now(self) -> float:
        return now(self.request)

    def render(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        """A page from ``notifier/console/templates`` (autoescaped), with what base.html needs."""
        html = page_environment(TEMPLATES).get_template(template).render(**self._base_context(), **context)
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")

    def render_fragment(self, template: str, **context: Any) -> str:
        """A piece of a page (no base.html), e.g. what a server-sent event carries."""
        return page_environment(TEMPLATES).get_template(template).render(t=self.t, lang=self.language, **context)

    def _base_context(self) -> dict[str, Any]:
        staff = self.session.staff if self.session else None
        nav = [item for item in self.request.app.get(NAV, ()) if staff and item.visible_to(staff)]
        other = self.t.other
        if self.request.method == "GET":
            switch = str(self.request.rel_url.update_query(lang=other))
        else:
            switch = f"{HOME_PATH}?lang={other}"
        return {
            "t": self.t,
            "lang": self.language,
            "html_lang": HTML_LANG[self.language],
            "other_lang": other,
            "other_html_lang": HTML_LANG[other],
            "lang_switch_url": switch,
            "staff": staff,
            "csrf": self.csrf,
            "csrf_field": security.CSRF_FIELD,
            "nav": nav,
            "current_path": self.request.path,
        }


def now(request: web.Request) -> float:
    clock = request.app.get(CLOCK)
    return clock() if clock is not None else time.time()


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location, headers=security.HEADERS)


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.method == "GET" else HOME_PATH
    return redirect(f"{LOGIN_PATH}?next={quote(target, safe='')}")


async def current_session(request: web.Request, *, activity: bool = True) -> StaffSession | None:
    """The live session the request's cookie names; an Authorization header is never looked at. ``activity``:
    whether the request keeps the session from ending idle (false for what a page asks by itself)."""
    token = request.cookies.get(security.SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return await request.app[STORE].find_staff_session(token, now=now(request), idle=SESSION_IDLE, activity=activity)


def page(
    *,
    roles: tuple[Role, ...] = (),
    public: bool = False,
    password_change: bool = False,
    same_origin: bool = False,
    activity: bool = True,
) -> Callable[[PageHandler], Handler]:
    """Wrap a console page handler; ``public`` for the login page only, ``password_change`` for the pages a
    staff member with a one-time password may still open, ``same_origin`` for a download of personal data:
    refused (403, nothing read or audited) when another site's page asked for it; ``activity=False`` for what a
    page's script asks by itself, which must not keep an unattended session from ending idle."""

    def decorate(handler: PageHandler) -> Handler:
        @wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            language, switched = request_language(request)
            session = None if public else await current_session(request, activity=activity)
            console = Console(request, session, language)
            if same_origin and request.headers.get("Sec-Fetch-Site") in OTHER_SITES:
                message = console.t("请从工作台的页面下载此文件", "Download this file from the console's own page")
                response: web.StreamResponse = error_page(console, 403, message)
            else:
                response = await _guarded(request, console, handler, roles, public, password_change)
            if response.prepared:  # a stream (server-sent events) set its headers before its first byte
                return response
            response.headers.update(security.HEADERS)
            if switched:
                response.set_cookie(COOKIE, language, max_age=365 * 86400, path="/console", samesite="Lax")
            return response

        return wrapper

    return decorate


async def _guarded(
    request: web.Request,
    console: Console,
    handler: PageHandler,
    roles: tuple[Role, ...],
    public: bool,
    password_change: bool,
) -> web.StreamResponse:
    t = console.t
    if not public:
        if console.session is None:
            raise login_redirect(request)
        staff = console.session.staff
        if staff.must_change_password and not password_change:
            raise redirect(PASSWORD_PATH)
        if roles and staff.role not in roles and staff.role is not Role.ADMIN:
            return error_page(console, 403, t("此页面需要其他角色", "This page needs another role"))
    if request.method == "POST":
        try:
            console.form = await request.post()
        except ValueError:  # a multipart type without its boundary, bytes that are no UTF-8 (UnicodeDecodeError)
            return error_page(console, 400, t("无法读取提交的表单", "The form sent could not be read"))
        expected = console.session.csrf_token if console.session else request.cookies.get(security.LOGIN_COOKIE)
        if not security.same_token(console.form.get(security.CSRF_FIELD), expected):
            message = t(
                "页面已过期或来源不明，请刷新页面后重试", "The form expired or did not come from this site; reload it"
            )
            return error_page(console, 403, message)
    try:
        return await handler(request, console)
    except NotifierError as exc:
        return error_page(console, exc.status, exc.detail)


def error_page(console: Console, status: int, message: str) -> web.Response:
    return console.render("error.html", status=status, message=message, code=status)
