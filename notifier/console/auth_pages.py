"""Signing in and out of the console, and the password change (forced at first login).

    GET  /console/login       the form (login name, password)
    POST /console/login       303 to the page asked for (or the password change while the password is
                              one-time); 401 with the form again for a wrong name or password (one message
                              for both); 429 while the name or the address is throttled; 403 without the
                              form's CSRF value
    GET  /console/password    the form (current password, new password twice)
    POST /console/password    303 to /console; 422 with the field named; ends the account's other sessions
    POST /console/logout      ends the session, 303 to the login page

An API key is not a password: the console reads only its own session cookie, never an Authorization
header, and a key typed into the form is just a wrong password.
"""

from __future__ import annotations

from aiohttp import web

from notifier.console import passwords, security, throttle
from notifier.console.framework import (
    HOME_PATH,
    LOGIN_PATH,
    PASSWORD_PATH,
    SESSION_TTL,
    Console,
    current_session,
    page,
    redirect,
)
from notifier.web.client_address import request_client

MAX_LOGIN_LENGTH = 100


def _next_path(raw: str | None) -> str:
    """Only a path inside the console: never another site (``//host``, ``/\\host``, a scheme)."""
    if raw and raw.startswith("/console") and not raw.startswith(("//", "/\\")) and "\\" not in raw:
        return raw
    return HOME_PATH


def _client_ip(request: web.Request) -> str:
    return request_client(request)


@page(public=True)
async def login_form(request: web.Request, console: Console) -> web.StreamResponse:
    if await current_session(request) is not None:
        raise redirect(_next_path(request.query.get("next")))
    return _login_page(console, request.query.get("next", ""))


def _login_page(
    console: Console, next_path: str, *, status: int = 200, error: str = "", login: str = ""
) -> web.Response:
    token = console.request.cookies.get(security.LOGIN_COOKIE) or security.new_login_token()
    console.login_token = token
    response = console.render("login.html", status=status, error=error, login=login, next_path=next_path)
    security.set_cookie(response, console.request, security.LOGIN_COOKIE, token, max_age=3600)
    return response


@page(public=True)
async def login(request: web.Request, console: Console) -> web.StreamResponse:
    t, store, now = console.t, console.store, console.now()
    name = console.field("login", MAX_LOGIN_LENGTH).strip()
    password = console.field("password", passwords.MAX_LENGTH)
    next_path = console.field("next", 2000)
    if not name or not password:
        message = t("请输入登录名和密码", "Enter your login name and password")
        return _login_page(console, next_path, status=422, error=message, login=name)
    verdict = await throttle.check(store, name, _client_ip(request), now)
    if verdict.locked:
        message = t("尝试次数过多，请15分钟后再试", "Too many attempts; try again in 15 minutes")
        return _login_page(console, next_path, status=429, error=message, login=name)
    stored = await store.get_staff_by_login(name)
    if stored is None:
        await passwords.spend_check_time(password)
        ok = False
    else:
        ok = await passwords.check_password(stored.password_hash, password) and not stored.disabled
    if stored is None or not ok:
        await throttle.record_failure(store, name, _client_ip(request), now, stored.member.id if stored else None)
        message = t("登录名或密码不正确", "The login name or the password is wrong")
        return _login_page(console, next_path, status=401, error=message, login=name)
    opened = await store.open_staff_session(stored, now=now, ttl=SESSION_TTL)
    if opened is None:  # reset or disabled while the password was being checked
        await throttle.record_failure(store, name, _client_ip(request), now, stored.member.id)
        message = t("登录名或密码不正确", "The login name or the password is wrong")
        return _login_page(console, next_path, status=401, error=message, login=name)
    await store.note_login_attempt(name, _client_ip(request), succeeded=True, now=now)
    token, _ = opened
    await store.audit(stored.member.actor, "staff.login", "staff_account", stored.member.id)
    target = PASSWORD_PATH if stored.member.must_change_password else _next_path(next_path)
    response = redirect(target)
    security.set_cookie(response, request, security.SESSION_COOKIE, token, max_age=int(SESSION_TTL))
    security.clear_cookie(response, security.LOGIN_COOKIE)
    raise response


@page(password_change=True)
async def password_form(request: web.Request, console: Console) -> web.StreamResponse:
    return console.render("password.html", errors={})


@page(password_change=True)
async def change_password(request: web.Request, console: Console) -> web.StreamResponse:
    t, store, staff = console.t, console.store, console.staff
    current = console.field("current_password", passwords.MAX_LENGTH + 1)
    new = console.field("new_password", passwords.MAX_LENGTH + 1)
    confirm = console.field("confirm", passwords.MAX_LENGTH + 1)
    stored = await store.get_staff(staff.id)
    assert stored is not None  # the session was found for it a moment ago
    verdict = await throttle.check(store, staff.login, _client_ip(request), console.now())
    if verdict.locked:
        error = t("尝试次数过多，请15分钟后再试", "Too many attempts; try again in 15 minutes")
        return console.render("password.html", status=429, errors={"current_password": error})
    if not await passwords.check_password(stored.password_hash, current):
        await throttle.record_failure(store, staff.login, _client_ip(request), console.now(), staff.id)
        error = t("当前密码不正确", "The current password is wrong")
        return console.render("password.html", status=422, errors={"current_password": error})
    problem = passwords.new_password_problem(new, confirm, current)
    if problem is not None:
        field, zh, en = problem
        return console.render("password.html", status=422, errors={field: t(zh, en)})
    assert console.session is not None
    await store.set_staff_password(staff, await passwords.hash_password(new), keep_session=console.session.token_hash)
    raise redirect(f"{HOME_PATH}?changed=1")


@page(password_change=True)
async def logout(request: web.Request, console: Console) -> web.StreamResponse:
    assert console.session is not None
    await console.store.close_staff_session(console.session)
    response = redirect(LOGIN_PATH)
    security.clear_cookie(response, security.SESSION_COOKIE)
    raise response


ROUTES = [
    ("GET", LOGIN_PATH, login_form),
    ("POST", LOGIN_PATH, login),
    ("GET", PASSWORD_PATH, password_form),
    ("POST", PASSWORD_PATH, change_password),
    ("POST", "/console/logout", logout),
]
