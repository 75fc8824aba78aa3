"""Console accounts and sessions over HTTP (no browser): the CLI that creates them, what the cookies and
headers say, sessions that end, keys that cannot sign in. The browser side is tests/browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.console import passwords
from notifier.console.framework import CLOCK, SESSION_IDLE
from notifier.console.passwords import check_password, hash_password, one_time_password
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn
from notifier.store import Store
from notifier.testing import FakeClock
from tests.test_cli import run_cli

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    base: str
    session: aiohttp.ClientSession
    clock: FakeClock

    async def login_token(self) -> str:
        async with self.session.get(f"{self.base}/console/login") as response:
            assert response.status == 200
            return _TOKEN.search(await response.text())[1]  # type: ignore[index]

    async def log_in(self, login: str, password: str) -> aiohttp.ClientResponse:
        form = {"csrf_token": await self.login_token(), "login": login, "password": password}
        async with self.session.post(f"{self.base}/console/login", data=form, allow_redirects=False) as response:
            await response.read()
            return response


@pytest.fixture
async def browser(settings: Settings, store: Store) -> AsyncIterator[Browser]:
    app = create_app(settings, store=store)
    clock = FakeClock()
    app[CLOCK] = clock
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        try:
            yield Browser(str(server.make_url("")).rstrip("/"), session, clock)
        finally:
            await server.close()


async def _account(store: Store, role: Role = Role.ISSUER) -> tuple[str, str]:
    password = one_time_password()
    member = await store.create_staff_account(
        department="environment", role=role, name="王芳", login=None, password_hash=await hash_password(password),
        actor="test",
    )  # fmt: skip
    return member.login, password


async def test_staff_create_prints_the_one_time_password_alone_on_the_last_line(
    store: Store, settings: Settings
) -> None:
    code, out, err = await run_cli(
        "staff", "create", "--department", "environment", "--role", "approver", "--name", "赵敏",
        db_url=settings.database.url,
    )  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    password, login = lines[-1], lines[1]
    assert re.fullmatch(r"[A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{5}", password)
    stored = await store.get_staff_by_login(login)
    assert stored is not None and stored.member.role is Role.APPROVER and stored.member.must_change_password
    assert stored.password_hash.startswith("$argon2id$") and password not in stored.password_hash
    # the service's own cost (RFC 9106's low-memory profile), made by a process of its own: the tests in this
    # process hash at argon2's lowest cost (tests/conftest.py)
    assert stored.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored.password_hash
    assert await check_password(stored.password_hash, password)
    assert await store.authenticate(password) is None  # the password is no API key


async def test_staff_create_refuses_bad_input_naming_the_field(store: Store, settings: Settings) -> None:
    base = ["staff", "create", "--role", "issuer"]
    code, _, err = await run_cli(*base, "--department", "nowhere", "--name", "x", db_url=settings.database.url)
    assert code == 2 and "no department nowhere" in err
    code, _, err = await run_cli(
        *base, "--department", "environment", "--name", "a\u202eb", db_url=settings.database.url
    )
    assert code == 2 and "name" in err
    code, _, err = await run_cli(
        *base, "--department", "environment", "--name", "x", "--login", "a b", db_url=settings.database.url
    )
    assert code == 2 and "login" in err


async def test_session_cookie_is_httponly_samesite_lax_and_expiring(browser: Browser, store: Store) -> None:
    login, password = await _account(store)
    response = await browser.log_in(login, password)
    assert response.status == 303 and response.headers["Location"] == "/console/password"
    cookie = SimpleCookie(response.headers["Set-Cookie"])
    morsel = next(m for m in cookie.values() if m.key == "console_session")
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and int(morsel["max-age"]) > 0
    assert morsel["path"] == "/console" and not morsel["secure"]  # plain http here: see the next test


async def test_cookies_are_secure_when_the_service_is_public_over_https(
    settings: Settings, store: Store, browser: Browser
) -> None:
    settings.server.public_url = "https://notices.example.gov.cn"
    login, password = await _account(store)
    async with aiohttp.ClientSession() as plain:  # sends what it is told: a client would keep Secure cookies
        async with plain.get(f"{browser.base}/console/login") as response:
            form_cookie = SimpleCookie(response.headers["Set-Cookie"])["console_login"]
            token = _TOKEN.search(await response.text())[1]  # type: ignore[index]
        assert form_cookie["secure"] and form_cookie["httponly"]
        form = {"csrf_token": token, "login": login, "password": password}
        headers = {"Cookie": f"console_login={form_cookie.value}"}
        url = f"{browser.base}/console/login"
        async with plain.post(url, data=form, headers=headers, allow_redirects=False) as response:
            assert response.status == 303
            cookies = [SimpleCookie(value) for value in response.headers.getall("Set-Cookie")]
    session = next(c["console_session"] for c in cookies if "console_session" in c)
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


async def test_every_console_page_sends_a_csp_without_inline_script(browser: Browser, store: Store) -> None:
    login, password = await _account(store)
    await browser.log_in(login, password)
    for path in ("/console/login", "/console/password", "/console", "/console/static/console.css"):
        async with browser.session.get(browser.base + path) as response:
            csp = response.headers["Content-Security-Policy"]
            assert response.status == 200, path
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp
            if response.content_type == "text/html":
                assert "<script>" not in await response.text() and " style=" not in await response.text()


async def test_an_api_key_cannot_sign_in(browser: Browser, store: Store) -> None:
    _, key = await store.create_api_key(department="environment", role=Role.ADMIN, name="k", actor="t")
    response = await browser.log_in(key, key)
    assert response.status == 401
    headers = {"Authorization": f"Bearer {key}"}
    async with browser.session.get(f"{browser.base}/console", headers=headers, allow_redirects=False) as answer:
        assert answer.status == 303 and answer.headers["Location"].startswith("/console/login")


async def test_an_idle_session_ends(browser: Browser, store: Store) -> None:
    login, password = await _account(store)
    await browser.log_in(login, password)
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 200
    browser.clock.advance(SESSION_IDLE + 1)
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")


async def test_an_open_follow_page_does_not_keep_an_idle_session_alive(browser: Browser, store: Store) -> None:
    """The follow page's script asks for its live part by itself (EventSource, reconnecting every ten minutes):
    that is no one at the desk, and an unattended console still signs out after an idle hour."""
    login, password = await _account(store)
    stored = await store.get_staff_by_login(login)
    assert stored is not None
    await store.set_staff_password(stored.member, stored.password_hash, keep_session="")  # no change asked
    body = {"topic": "air-quality", "title": "已撤销的通知", "body": "无", "target": {"areas": ["370725"]},
            "channels": ["sms"]}  # fmt: skip
    notice, _ = await store.create_notice(
        NoticeIn.model_validate(body), department="environment", created_by=stored.member.key_id, actor="test"
    )
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.CANCELLED, actor="test")
    assert (await browser.log_in(login, password)).status == 303
    events = f"{browser.base}/console/notices/{notice.id}/events"
    browser.clock.advance(SESSION_IDLE * 2 / 3)
    async with browser.session.get(events, allow_redirects=False) as response:  # the page asks, nobody clicks
        assert response.status == 200 and "event: end" in await response.text()
    browser.clock.advance(SESSION_IDLE * 2 / 3)
    async with browser.session.get(events, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")


async def test_the_next_page_after_login_never_leaves_the_console(browser: Browser, store: Store) -> None:
    login, password = await _account(store)
    await browser.log_in(login, password)
    async with browser.session.post(
        f"{browser.base}/console/password",
        data={"csrf_token": await _session_token(browser), "current_password": password,
              "new_password": "a-good-new-password", "confirm": "a-good-new-password"},
        allow_redirects=False,
    ) as response:  # fmt: skip
        assert response.status == 303
    for next_path, expected in (("//evil.example/x", "/console"), ("https://evil.example", "/console"),
                                ("/console/password", "/console/password")):  # fmt: skip
        browser.session.cookie_jar.clear()  # signed out
        form = {"csrf_token": await browser.login_token(), "login": login, "password": "a-good-new-password",
                "next": next_path}  # fmt: skip
        async with browser.session.post(f"{browser.base}/console/login", data=form, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == expected, next_path


async def test_a_revoked_key_disables_its_account(browser: Browser, store: Store) -> None:
    login, password = await _account(store)
    stored = await store.get_staff_by_login(login)
    assert stored is not None
    row = await store.db.fetch_one("get_staff_by_id", {"id": stored.member.id})
    assert row is not None
    prefix = (await store.db.fetch_one("list_api_keys", {"after": row["key_id"] - 1, "department": None,
                                                         "limit": 1}))["prefix"]  # type: ignore[index]  # fmt: skip
    await store.revoke_api_key(prefix, actor="test")
    assert (await browser.log_in(login, password)).status == 401


async def _session_token(browser: Browser) -> str:
    async with browser.session.get(f"{browser.base}/console/password") as response:
        return _TOKEN.search(await response.text())[1]  # type: ignore[index]


async def test_a_hostile_login_name_comes_back_escaped(browser: Browser) -> None:
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    form = {"csrf_token": await browser.login_token(), "login": payload, "password": "wrong-password"}
    async with browser.session.post(f"{browser.base}/console/login", data=form) as response:
        assert response.status == 401
        html = await response.text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # kept in the field, as text


async def test_a_form_the_console_cannot_read_is_a_400_page_not_a_500(browser: Browser, store: Store) -> None:
    """A body that is no form at all (a multipart type without its boundary, bytes that are no UTF-8), sent by a
    visitor to the login page or by a staff member to any page, is refused as bad input, and nothing is done."""
    login, password = await _account(store)
    token = await browser.login_token()
    unreadable = [
        ({"Content-Type": "multipart/form-data"}, b"--x\r\n"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"csrf_token=" + token.encode() + b"&login=\xff\xfe"),
    ]
    for headers, body in unreadable:
        async with browser.session.post(f"{browser.base}/console/login", data=body, headers=headers) as response:
            assert response.status == 400 and response.content_type == "text/html", await response.text()
            assert "Content-Security-Policy" in response.headers
    assert (await browser.log_in(login, password)).status == 303
    session_token = await _session_token(browser)
    for headers, body in unreadable:
        body = body.replace(token.encode(), session_token.encode())
        body = body.replace(b"login=", b"current_password=" + password.encode() + b"&new_password=")
        async with browser.session.post(f"{browser.base}/console/password", data=body, headers=headers) as response:
            assert response.status == 400 and response.content_type == "text/html", await response.text()
    stored = await store.get_staff_by_login(login)
    assert stored is not None and await check_password(stored.password_hash, password)


async def test_staff_list_shows_every_account_and_its_state(store: Store, settings: Settings) -> None:
    active, password = await _account(store)
    stored = await store.get_staff_by_login(active)
    assert stored is not None
    await store.set_staff_password(stored.member, await hash_password(password + "-new"), keep_session="")
    fresh, _ = await _account(store, Role.APPROVER)
    gone, _ = await _account(store)
    await store.disable_staff_account(gone, actor="test")
    code, out, err = await run_cli("staff", "list", "--department", "environment", db_url=settings.database.url)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["login", "name", "department", "role"]
    states = {line.split()[0]: line for line in lines[1:]}
    assert states[active].endswith("active") and states[fresh].endswith("one-time password")
    assert states[gone].endswith("disabled") and len(states) == 3
    code, out, err = await run_cli("staff", "list", "--department", "civil-affairs", db_url=settings.database.url)
    assert code == 0 and out.strip().splitlines()[1:] == [], (out, err)
    code, _, err = await run_cli("staff", "list", "--department", "nowhere", db_url=settings.database.url)
    assert code != 0 and "nowhere" in err and "Traceback" not in err


async def test_a_disabled_account_is_signed_out_and_cannot_sign_in(
    browser: Browser, store: Store, settings: Settings
) -> None:
    login, password = await _account(store)
    assert (await browser.log_in(login, password)).status == 303
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 200  # signed in
    code, out, err = await run_cli("staff", "disable", login, db_url=settings.database.url)
    assert code == 0 and login in out, err
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")
    assert (await browser.log_in(login, password)).status == 401
    [entry] = [row for row in await store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
               if row["action"] == "staff.disable"]  # fmt: skip
    assert entry["actor"] == "cli" and password not in entry["detail"]
    code, _, err = await run_cli("staff", "disable", login, db_url=settings.database.url)
    assert code != 0 and "disabled already" in err and "Traceback" not in err


async def test_reset_password_gives_a_one_time_password_and_ends_the_sessions(
    browser: Browser, store: Store, settings: Settings
) -> None:
    login, password = await _account(store)
    assert (await browser.log_in(login, password)).status == 303
    code, out, err = await run_cli("staff", "reset-password", login, db_url=settings.database.url)
    assert code == 0, err
    new_password = out.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{5}", new_password) and new_password != password
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")
    assert (await browser.log_in(login, password)).status == 401
    answer = await browser.log_in(login, new_password)
    assert answer.status == 303 and answer.headers["Location"].startswith("/console/password")  # to be changed
    stored = await store.get_staff_by_login(login)
    assert stored is not None and stored.member.must_change_password
    assert await check_password(stored.password_hash, new_password)
    actions = [row["action"] for row in await store.db.fetch_all("list_audit", {"after": 0, "limit": 100})]
    assert "staff.password_reset" in actions


async def test_reset_password_refuses_a_disabled_or_unknown_account(store: Store, settings: Settings) -> None:
    login, _ = await _account(store)
    await store.disable_staff_account(login, actor="test")
    code, out, err = await run_cli("staff", "reset-password", login, db_url=settings.database.url)
    assert code != 0 and "disabled" in err and "Traceback" not in err
    assert not re.search(r"[A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{5}", out)
    code, _, err = await run_cli("staff", "disable", "no-such-login", db_url=settings.database.url)
    assert code != 0 and "no-such-login" in err and "Traceback" not in err


async def test_a_reset_during_the_password_check_leaves_no_session(
    browser: Browser, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of a password takes a while (argon2); an admin's reset that lands meanwhile ends every session of
    the account, and the sign-in that checked the old password must not open one after it."""
    login, password = await _account(store)
    checked = passwords.check_password

    async def reset_while_checking(stored_hash: str, given: str) -> bool:
        ok = await checked(stored_hash, given)
        await store.reset_staff_password(login, await hash_password(one_time_password()), actor="test")
        return ok

    monkeypatch.setattr(passwords, "check_password", reset_while_checking)
    answer = await browser.log_in(login, password)
    assert answer.status == 401
    stored = await store.get_staff_by_login(login)
    assert stored is not None
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
    assert "staff.login" not in [row["action"] for row in rows]
    async with browser.session.get(f"{browser.base}/console/password", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/console/login")
