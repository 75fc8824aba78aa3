"""The last active admin console account is never disabled: not by `notifier staff disable`, not on
/console/staff, and not by two admins disabling each other at once (the refusal is decided in the transaction that
disables). On PostgreSQL, where two such transactions run side by side, another connection holds the admin
accounts' rows until both disablings queue behind it, so both have read the accounts before either writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from notifier.config import Settings
from notifier.console.passwords import hash_password, one_time_password
from notifier.domain.enums import Role
from notifier.domain.errors import Conflict
from notifier.store import Store
from tests.conftest import Api
from tests.console_sign_in import signed_in_session
from tests.test_cli import run_cli
from tests.test_console_staff_accounts import form_token

Queued = Callable[[int], Awaitable[None]]
WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _admin(store: Store, name: str, department: str = "environment") -> str:
    member = await store.create_staff_account(
        department=department, role=Role.ADMIN, name=name, login=None,
        password_hash=await hash_password(one_time_password()), actor="test",
    )  # fmt: skip
    return member.login


async def _active_admins(store: Store) -> list[str]:
    accounts = await store.list_staff_accounts()
    return [a.member.login for a in accounts if a.member.role is Role.ADMIN and not a.disabled]


@contextlib.asynccontextmanager
async def admin_rows_held(url: str) -> AsyncIterator[Queued]:
    """On PostgreSQL, every admin account's row locked by a connection of its own until the block ends; the
    function given waits until ``n`` other sessions of the database wait for a lock. SQLite lets one writer in
    at a time, so there is nothing to hold and nothing to wait for."""
    if not url.startswith("postgresql"):

        async def nothing_to_wait_for(n: int) -> None:
            return None

        yield nothing_to_wait_for
        return
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.fetch("SELECT id FROM staff_accounts WHERE role = 'admin' FOR UPDATE")

            async def queued(n: int) -> None:
                async with asyncio.timeout(20):
                    while await conn.fetchval(WAITING_FOR_A_LOCK) < n:  # noqa: ASYNC110 - the server's own record
                        await asyncio.sleep(0.01)

            yield queued
    finally:
        await conn.close()


async def _key_prefix(store: Store, login: str) -> str:
    stored = await store.get_staff_by_login(login)
    assert stored is not None
    keys, _ = await store.list_api_keys(department=stored.member.department, cursor=None, limit=100)
    [key] = [key for key in keys if key.id == stored.member.key_id]
    return key.prefix


async def test_the_cli_refuses_to_disable_the_last_active_admin(store: Store, settings: Settings) -> None:
    first = await _admin(store, "王管理")
    code, out, err = await run_cli("staff", "disable", first, db_url=settings.database.url)
    assert code != 0 and "last active admin" in err and first in err and "Traceback" not in err, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    # an admin account whose key was revoked cannot sign in: it does not count
    revoked = await _admin(store, "赵管理")
    await store.revoke_api_key(await _key_prefix(store, revoked), actor="test")
    code, _, err = await run_cli("staff", "disable", first, db_url=settings.database.url)
    assert code != 0 and "last active admin" in err, err
    assert await _active_admins(store) == [first]
    second = await _admin(store, "李管理", department="civil-affairs")
    code, out, err = await run_cli("staff", "disable", first, db_url=settings.database.url)
    assert code == 0 and first in out, err
    code, _, err = await run_cli("staff", "disable", second, db_url=settings.database.url)
    assert code != 0 and "last active admin" in err and "Traceback" not in err, err
    assert await _active_admins(store) == [second]
    disables = [row for row in await store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
                if row["action"] == "staff.disable"]  # fmt: skip
    assert len(disables) == 1


async def test_two_admins_disabling_each_other_at_once_leave_one(store: Store, settings: Settings) -> None:
    first, second = await _admin(store, "王管理"), await _admin(store, "李管理")
    async with admin_rows_held(settings.database.url) as queued:
        disablings = [
            asyncio.create_task(store.disable_staff_account(first, actor="staff:2")),
            asyncio.create_task(store.disable_staff_account(second, actor="staff:1")),
        ]
        await queued(2)
    outcomes = await asyncio.gather(*disablings, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(refused) == 1 and "last active admin" in refused[0].detail, outcomes
    assert len(await _active_admins(store)) == 1


@pytest.fixture
async def admins(api: Api) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientSession]]:
    first = await signed_in_session(api.store, api.base, department="environment", role=Role.ADMIN, name="王管理")
    second = await signed_in_session(api.store, api.base, department="civil-affairs", role=Role.ADMIN, name="李管理")
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def disable(session: aiohttp.ClientSession, token: str, login: str) -> tuple[int, str, str]:
    """Status, Location and page of disabling ``login`` with the form's ``token``."""
    path = f"/console/staff/{login}/disable"
    async with session.post(path, data={"csrf_token": token}, allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def test_the_console_shows_why_the_last_admin_is_not_disabled(
    api: Api, settings: Settings, admins: tuple[aiohttp.ClientSession, aiohttp.ClientSession]
) -> None:
    """On PostgreSQL both disablings have signed in and read the accounts before either writes, and the second is
    refused on the page. SQLite does not let the test hold them there: the second may also find its session ended
    already, and be sent to the sign-in page; it never disables the last admin account."""
    login = {a.member.name: a.member.login for a in await api.store.list_staff_accounts()}
    tokens = [await form_token(session) for session in admins]
    async with admin_rows_held(settings.database.url) as queued:
        posts = [
            asyncio.create_task(disable(admins[0], tokens[0], login["李管理"])),
            asyncio.create_task(disable(admins[1], tokens[1], login["王管理"])),
        ]
        await queued(2)
    answers = await asyncio.gather(*posts)
    assert len(await _active_admins(api.store)) == 1
    done = [a for a in answers if a[0] == 303 and a[1].startswith("/console/staff?done=disabled")]
    refused = [a for a in answers if a[0] == 409]
    signed_out = [a for a in answers if a[0] == 303 and a[1].startswith("/console/login")]
    assert len(done) == 1 and len(refused) + len(signed_out) == 1, answers
    if settings.database.url.startswith("postgresql"):
        assert len(refused) == 1, answers
    for _, _, page in refused:
        assert 'id="disable-error"' in page and "最后一个可用的管理员账号" in page
