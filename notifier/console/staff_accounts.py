"""Console accounts, for admins: list them, create one, disable one, give a forgotten password a new one-time
password. The store's calls are those of ``notifier staff`` (docs/console.md), audited there.

    GET  /console/staff                               every account, by department and login, with its state
    POST /console/staff                               a new account: its one-time password shown once
    POST /console/staff/{login}/disable               disabled for good; its open sessions end
    POST /console/staff/{login}/reset-password        a new one-time password, shown once; its open sessions end

For admins only. An admin does not disable or reset their own account here: the one would lock the county out
of its last admin account by a slip, the other is what the password page is for. Nor is the last active admin
account disabled (two admins disabling each other at once): the page shows why, and nothing changes.
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import ValidationError

from notifier.api.problems import field_errors
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.console.passwords import hash_password, one_time_password
from notifier.domain.enums import Role
from notifier.domain.errors import Conflict, LastAdminAccount, NotFound
from notifier.domain.staff import StaffIn

ACCOUNTS_PATH = "/console/staff"
ADMINS = (Role.ADMIN,)
FIELDS = ("department", "role", "name", "login")
# a chosen login name has at most 40 characters, a default one is the department's code (up to 48) and the id
_LOGIN = re.compile(r"[A-Za-z0-9._-]{3,80}", re.ASCII)


async def _accounts_page(
    console: Console, *, status: int = 200, errors: dict[str, str] | None = None, values: dict[str, str] | None = None
) -> web.Response:
    return console.render(
        "staff_accounts.html",
        status=status,
        accounts=await console.store.list_staff_accounts(),
        departments=await console.store.list_departments(),
        roles=[role.value for role in Role],
        errors=errors or {},
        values=values or {},
        done=console.request.query.get("done"),
        done_login=console.request.query.get("login", "")[:80],
    )


@page(roles=ADMINS)
async def accounts(request: web.Request, console: Console) -> web.StreamResponse:
    return await _accounts_page(console)


def _password_page(console: Console, login: str, password: str, *, created: bool) -> web.Response:
    return console.render("staff_password.html", login=login, password=password, created=created)


@page(roles=ADMINS)
async def create(request: web.Request, console: Console) -> web.StreamResponse:
    values = {name: console.field(name, 201).strip() for name in FIELDS}
    try:
        new = StaffIn.model_validate({**values, "login": values["login"] or None})
    except ValidationError as exc:
        errors = {error.loc.split(".")[0]: error.msg for error in field_errors(exc)}
        return await _accounts_page(console, status=422, errors=errors, values=values)
    password = one_time_password()
    try:
        member = await console.store.create_staff_account(
            department=new.department, role=new.role, name=new.name, login=new.login,
            password_hash=await hash_password(password), actor=console.staff.actor,
        )  # fmt: skip
    except NotFound as exc:
        return await _accounts_page(console, status=422, errors={"department": exc.detail}, values=values)
    except Conflict as exc:
        return await _accounts_page(console, status=409, errors={"login": exc.detail}, values=values)
    return _password_page(console, member.login, password, created=True)


def _other_login(console: Console) -> str:
    """The account the path names: 404 for a name no account could have, 409 for the admin's own."""
    login = console.request.match_info["login"]
    if not _LOGIN.fullmatch(login):
        raise NotFound(f"no console account with the login name {login[:40]}")
    if login == console.staff.login:
        raise Conflict(
            console.t(
                "不能在这里停用或重置自己的账号；修改自己的密码请用“修改密码”页面",
                "You cannot disable or reset your own account here; change your password on the password page",
            )
        )
    return login


@page(roles=ADMINS)
async def disable(request: web.Request, console: Console) -> web.StreamResponse:
    login = _other_login(console)
    try:
        await console.store.disable_staff_account(login, actor=console.staff.actor)
    except LastAdminAccount:
        message = console.t(
            f"{login} 是最后一个可用的管理员账号，不能停用；请先新建另一个管理员账号",
            f"{login} is the last active admin account and cannot be disabled; create another admin account first",
        )
        return await _accounts_page(console, status=409, errors={"disable": message})
    raise redirect(f"{ACCOUNTS_PATH}?done=disabled&login={login}")


@page(roles=ADMINS)
async def reset_password(request: web.Request, console: Console) -> web.StreamResponse:
    login = _other_login(console)
    password = one_time_password()
    await console.store.reset_staff_password(login, await hash_password(password), actor=console.staff.actor)
    return _password_page(console, login, password, created=False)


NAV_ITEMS = [NavItem(ACCOUNTS_PATH, "工作人员账号", "Staff accounts", ADMINS)]
ROUTES = [
    ("GET", ACCOUNTS_PATH, accounts),
    ("POST", ACCOUNTS_PATH, create),
    ("POST", ACCOUNTS_PATH + "/{login}/disable", disable),
    ("POST", ACCOUNTS_PATH + "/{login}/reset-password", reset_password),
]
