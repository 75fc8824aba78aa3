"""The console's login throttle counts failures per client address (``notifier.console.throttle``): behind a
reverse proxy named in ``[server] trusted_proxies`` the client is the one its ``X-Forwarded-For`` names, so one
client's guessing locks that client, not every colleague behind the same proxy; from any other peer the header
is ignored, so forging it buys no more guesses. Over HTTP, no browser (tests/browser/test_console_login.py has
the pages)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.console import throttle
from notifier.console.passwords import hash_password
from notifier.domain.enums import Role
from notifier.store import Store

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "代理后面的登录-足够长的密码-2026"
GUESSER, COLLEAGUE = "198.51.100.7", "198.51.100.8"


async def staff_login(store: Store) -> str:
    password_hash = await hash_password(PASSWORD)
    member = await store.create_staff_account(
        department="environment", role=Role.ISSUER, name="王科员", login=None, password_hash=password_hash,
        actor="test",
    )  # fmt: skip
    await store.set_staff_password(member, password_hash, keep_session="")
    assert member.login is not None
    return member.login


async def log_in(server: TestServer, login: str, password: str, forwarded_for: str) -> int:
    """One login attempt from a fresh browser, through a proxy that says the client is ``forwarded_for``:
    the status of the answer (303 signed in, 401 wrong, 429 locked)."""
    base = str(server.make_url("")).rstrip("/")
    headers = {"X-Forwarded-For": forwarded_for}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar, headers=headers) as session:
        async with session.get("/console/login") as response:
            token = _TOKEN.search(await response.text())[1]  # type: ignore[index]
        form = {"csrf_token": token, "login": login, "password": password}
        async with session.post("/console/login", data=form, allow_redirects=False) as response:
            return response.status


async def guess_until_locked(server: TestServer, forwarded_for: str) -> list[int]:
    """``PER_CLIENT`` wrong guesses, each at another login name (no name gets locked), then one more."""
    return [await log_in(server, f"guess{n}", "wrong-password", forwarded_for) for n in range(throttle.PER_CLIENT + 1)]


Serve = Callable[[list[str]], Awaitable[TestServer]]


@pytest.fixture
async def served(settings: Settings, store: Store) -> AsyncIterator[Serve]:
    """Start the service with these ``trusted_proxies``."""
    servers: list[TestServer] = []

    async def serve(trusted: list[str]) -> TestServer:
        settings.server.trusted_proxies = [ipaddress.ip_network(network) for network in trusted]
        server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        await server.close()


async def test_behind_a_trusted_proxy_a_guessing_client_locks_itself_not_its_colleagues(
    served: Serve, store: Store
) -> None:
    server = await served(["127.0.0.1/32"])
    login = await staff_login(store)
    assert await guess_until_locked(server, GUESSER) == [401] * throttle.PER_CLIENT + [429]
    assert await log_in(server, login, PASSWORD, GUESSER) == 429  # the guesser's address is locked
    assert await log_in(server, login, PASSWORD, COLLEAGUE) == 303  # the same proxy, another client


async def test_from_an_untrusted_peer_a_forged_forwarded_for_buys_no_more_guesses(served: Serve, store: Store) -> None:
    server = await served([])
    login = await staff_login(store)
    statuses = [await log_in(server, f"guess{n}", "wrong-password", f"198.51.100.{n + 1}")
                for n in range(throttle.PER_CLIENT + 1)]  # fmt: skip
    assert statuses == [401] * throttle.PER_CLIENT + [429]
    assert await log_in(server, login, PASSWORD, COLLEAGUE) == 429  # the peer's own address is what counts
