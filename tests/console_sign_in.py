"""A console account signed in over HTTP (no browser), for the tests that drive the console's pages with aiohttp."""

from __future__ import annotations

import re

import aiohttp

from notifier.console.passwords import hash_password
from notifier.domain.enums import Role
from notifier.store import Store

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "控制台测试账号-足够长的密码-2026"


async def signed_in_session(
    store: Store, base: str, *, department: str, role: Role = Role.ISSUER, name: str = "测试文员"
) -> aiohttp.ClientSession:
    """A new console account of ``department`` with ``role``, its password set (no change asked at first login),
    signed in on the server at ``base``: a session holding its cookies, relative paths joined to ``base``. The
    caller closes it."""
    password_hash = await hash_password(PASSWORD)
    member = await store.create_staff_account(
        department=department, role=role, name=name, login=None, password_hash=password_hash, actor="test"
    )
    await store.set_staff_password(member, password_hash, keep_session="")
    session = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        async with session.get("/console/login") as response:
            token = CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]
        form = {"csrf_token": token, "login": member.login, "password": PASSWORD}
        async with session.post("/console/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
    except BaseException:
        await session.close()
        raise
    return session
