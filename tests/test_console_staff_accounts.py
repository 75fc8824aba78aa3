"""An admin manages the console accounts on /console/staff: every department's accounts with their state, a new
account whose one-time password is shown once, an account disabled (its sessions end at once), a forgotten
password reset (a new one-time password, the account's sessions ended). Other roles get a 403 page; an admin
cannot disable or reset their own account there."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from notifier.console.passwords import check_password
from notifier.domain.enums import Role
from tests.conftest import Api
from tests.console_sign_in import CSRF_FIELD, signed_in_session

ONE_TIME = re.compile(r'<code id="one-time-password">([A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{5})</code>')


@pytest.fixture
async def admin(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    session = await signed_in_session(api.store, api.base, department="civil-affairs", role=Role.ADMIN, name="管理员")
    try:
        yield session
    finally:
        await session.close()


async def form_token(session: aiohttp.ClientSession) -> str:
    async with session.get("/console/staff") as response:
        assert response.status == 200, await response.text()
        return CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]


async def post(session: aiohttp.ClientSession, path: str, **fields: str) -> tuple[int, str]:
    data = {"csrf_token": await form_token(session), **fields}
    async with session.post(path, data=data, allow_redirects=False) as response:
        return response.status, await response.text()


async def clerk_of(api: Api) -> aiohttp.ClientSession:
    return await signed_in_session(api.store, api.base, department="environment", name="赵文员")



async def test_the_page_lists_every_account_for_an_admin_only(api: Api, admin: aiohttp.ClientSession) -> None:
    clerk = await clerk_of(api)
    try:
        async with clerk.get("/console/staff", allow_redirects=False) as response:
            assert response.status == 403 and response.content_type == "text/html"
        async with clerk.get("/console/password") as response:
            token = CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]
        async with clerk.post("/console/staff", data={"csrf_token": token, "department": "environment",
                                                      "role": "admin", "name": "越权"}) as response:  # fmt: skip
            assert response.status == 403
    finally:
        await clerk.close()
    accounts = await api.store.list_staff_accounts()
    assert "越权" not in {account.member.name for account in accounts}
    async with admin.get("/console/staff?lang=en") as response:
        page = await response.text()
    for account in accounts:
        assert f'id="account-{account.member.login}"' in page
    assert "Staff accounts" in page


async def test_a_new_account_shows_its_one_time_password_once(api: Api, admin: aiohttp.ClientSession) -> None:
    status, page = await post(admin, "/console/staff", department="civil-affairs", role="issuer", name="孙老师",
                              login="sun.teacher")  # fmt: skip
    assert status == 200, page
    password = ONE_TIME.search(page)[1]  # type: ignore[index]
    stored = await api.store.get_staff_by_login("sun.teacher")
    assert stored is not None and stored.member.department == "civil-affairs" and stored.member.must_change_password
    assert await check_password(stored.password_hash, password)
    async with admin.get("/console/staff") as response:
        listing = await response.text()
    assert password not in listing and 'id="account-sun.teacher" data-state="one-time"' in listing
    status, page = await post(admin, "/console/staff", department="civil-affairs", role="issuer", name="重名",
                              login="sun.teacher")  # fmt: skip
    assert status == 409 and 'id="login-error"' in page and not ONE_TIME.search(page)
    status, page = await post(admin, "/console/staff", department="nowhere", role="chief", name="")
    assert status == 422 and not ONE_TIME.search(page)
    assert 'id="role-error"' in page and 'id="name-error"' in page


async def test_disable_ends_the_accounts_sessions(api: Api, admin: aiohttp.ClientSession) -> None:
    clerk = await clerk_of(api)
    try:
        [account] = [a for a in await api.store.list_staff_accounts("environment") if a.member.name == "赵文员"]
        login = account.member.login
        status, _ = await post(admin, f"/console/staff/{login}/disable")
        assert status == 303
        async with clerk.get("/console/password", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/console/login")
    finally:
        await clerk.close()
    async with admin.get("/console/staff") as response:
        page = await response.text()
    assert f'id="account-{login}" data-state="disabled"' in page and f'id="disable-{login}"' not in page
    status, _ = await post(admin, f"/console/staff/{login}/disable")
    assert status == 409
    audit = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 200})
    actions = [(row["action"], row["actor"]) for row in audit]
    assert sum(1 for action, actor in actions if action == "staff.disable" and actor.startswith("staff:")) == 1


async def test_reset_shows_a_new_one_time_password_and_ends_the_sessions(
    api: Api, admin: aiohttp.ClientSession
) -> None:
    clerk = await clerk_of(api)
    try:
        [account] = [a for a in await api.store.list_staff_accounts("environment") if a.member.name == "赵文员"]
        login = account.member.login
        status, page = await post(admin, f"/console/staff/{login}/reset-password")
        assert status == 200, page
        password = ONE_TIME.search(page)[1]  # type: ignore[index]
        async with clerk.get("/console/password", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/console/login")
    finally:
        await clerk.close()
    stored = await api.store.get_staff_by_login(login)
    assert stored is not None and stored.member.must_change_password
    assert await check_password(stored.password_hash, password)


async def test_an_admin_does_not_disable_or_reset_their_own_account(api: Api, admin: aiohttp.ClientSession) -> None:
    [own] = [a for a in await api.store.list_staff_accounts("civil-affairs") if a.member.name == "管理员"]
    for action in ("disable", "reset-password"):
        status, page = await post(admin, f"/console/staff/{own.member.login}/{action}")
        assert status == 409 and not ONE_TIME.search(page), action
    stored = await api.store.get_staff_by_login(own.member.login)
    assert stored is not None and not stored.disabled and not stored.member.must_change_password
    status, _ = await post(admin, "/console/staff/%3Cscript%3E/disable")
    assert status == 404


async def test_an_account_named_after_a_long_department_code_is_managed_too(
    api: Api, admin: aiohttp.ClientSession
) -> None:
    department = "township-emergency-management-and-fire-safety"  # codes run to 48 characters
    await api.store.upsert_department(department, "乡镇应急管理和消防安全办公室", ["air-quality"])
    status, page = await post(admin, "/console/staff", department=department, role="issuer", name="钱文员")
    assert status == 200, page
    login = re.search(r'<dd id="login">([^<]+)</dd>', page)[1]  # type: ignore[index]
    assert login.startswith(department + "-") and len(login) > 40
    status, page = await post(admin, f"/console/staff/{login}/reset-password")
    assert status == 200 and ONE_TIME.search(page), page
    status, page = await post(admin, f"/console/staff/{login}/disable")
    assert status == 303, page
    stored = await api.store.get_staff_by_login(login)
    assert stored is not None and stored.disabled
