"""The console's way in, in real Chromium: first login with the one-time password, the forced change,
logout; forms without their CSRF value refused; the login throttle; a hostile name shown as text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from notifier.domain.enums import Role
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot

pytestmark = pytest.mark.peer("chromium")

XSS_NAME = '张明<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
NEW_PASSWORD = "青山绿水-2026-空气"


async def test_first_login_changes_the_one_time_password_then_logs_out(
    console_server: str, store: Store, page: Any
) -> None:
    member, one_time = await new_staff(store, name=XSS_NAME, role=Role.APPROVER)
    await page.goto(f"{console_server}/console")
    assert "/console/login" in page.url  # not signed in: the console sends the browser to the login page
    await axe_check(page)
    await screenshot(page, "console-login")

    await page.get_by_label("登录名").fill(member.login)
    await page.get_by_label("密码", exact=True).fill(one_time)
    await page.click("#login-submit")
    await page.wait_for_selector("#must-change")
    assert page.url.endswith("/console/password")
    await axe_check(page)
    await screenshot(page, "console-password")

    await page.goto(f"{console_server}/console")  # any other page waits until the password is changed
    await page.wait_for_selector("#must-change")

    await page.get_by_label("当前密码").fill(one_time)
    await page.get_by_label("新密码（至少10个字符）").fill("short")
    await page.get_by_label("再次输入新密码").fill("short")
    await page.click("#password-submit")
    await page.wait_for_selector("#new_password-error")

    await page.get_by_label("当前密码").fill(one_time)
    await page.get_by_label("新密码（至少10个字符）").fill(NEW_PASSWORD)
    await page.get_by_label("再次输入新密码").fill(NEW_PASSWORD)
    await page.click("#password-submit")
    await page.wait_for_selector("#password-changed")
    assert await page.text_content("#staff-name") == XSS_NAME  # the markup is shown as text...
    assert await page.evaluate("() => window.__xss") is None  # ...and never ran
    assert await page.locator("#staff-name img, #staff-name script").count() == 0
    await axe_check(page)
    await screenshot(page, "console-home")

    await page.click("text=English")
    await page.wait_for_selector("text=Log out")
    assert await page.get_attribute("html", "lang") == "en"
    await axe_check(page)
    await screenshot(page, "console-home-en")
    await page.click("text=中文")
    await page.wait_for_selector("text=退出登录")

    await page.click("text=退出登录")
    await page.wait_for_selector("#login-submit")
    await page.goto(f"{console_server}/console")
    assert "/console/login" in page.url  # the session ended with the logout

    await page.get_by_label("登录名").fill(member.login)
    await page.get_by_label("密码", exact=True).fill(one_time)  # the one-time password is spent
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error")
    await log_in(page, console_server, member.login, NEW_PASSWORD)
    await page.wait_for_selector("#staff-name")
    actions = [entry.action for entry in (await store.list_audit(_all(), None, 100))[0]]
    assert {"staff.create", "staff.login", "staff.password_change", "staff.logout"} <= set(actions)


async def test_a_post_without_the_form_csrf_value_is_refused(console_server: str, store: Store, page: Any) -> None:
    member, one_time = await new_staff(store)
    await log_in(page, console_server, member.login, one_time, new_password=NEW_PASSWORD)
    # the browser's own cookies go along (page.request shares them): only the form's value is missing
    form = {"current_password": NEW_PASSWORD, "new_password": "another-password-1", "confirm": "another-password-1"}
    response = await page.request.post(f"{console_server}/console/password", form=form, max_redirects=0)
    assert response.status == 403
    assert "刷新页面" in await response.text()
    response = await page.request.post(
        f"{console_server}/console/password", form={**form, "csrf_token": "forged"}, max_redirects=0
    )
    assert response.status == 403
    response = await page.request.post(f"{console_server}/console/logout", form={}, max_redirects=0)
    assert response.status == 403
    await page.goto(f"{console_server}/console")
    await page.wait_for_selector("#staff-name")  # still signed in: the logout without its value did nothing
    stored = await store.get_staff(member.id)
    assert stored is not None
    from notifier.console.passwords import check_password

    assert await check_password(stored.password_hash, NEW_PASSWORD)  # the password did not change

    response = await page.request.post(
        f"{console_server}/console/login", form={"login": member.login, "password": NEW_PASSWORD}, max_redirects=0
    )
    assert response.status == 403  # the login form has its own value too


async def test_the_login_throttle_holds_per_account_and_per_address(
    console_server: str, store: Store, page: Any
) -> None:
    member, one_time = await new_staff(store)
    other, other_password = await new_staff(store, name="李华")
    for _ in range(5):
        await page.goto(f"{console_server}/console/login")
        await page.get_by_label("登录名").fill(member.login)
        await page.get_by_label("密码", exact=True).fill("wrong-password")
        await page.click("#login-submit")
        await page.wait_for_selector("#login-error")
        assert "不正确" in (await page.text_content("#login-error") or "")
    await page.get_by_label("登录名").fill(member.login)
    await page.get_by_label("密码", exact=True).fill(one_time)  # the right one, during the lockout
    await page.click("#login-submit")
    await page.wait_for_selector("#login-error")
    assert "尝试次数过多" in (await page.text_content("#login-error") or "")
    assert "/console/login" in page.url
    await axe_check(page)
    await screenshot(page, "console-login-throttled")
    lockouts = [e for e in (await store.list_audit(_all(), None, 100))[0] if e.action == "staff.lockout"]
    assert [e.object_id for e in lockouts] == [str(member.id)]

    await log_in(page, console_server, other.login, other_password)  # another account from this address: fine
    await page.wait_for_selector("#must-change")
    await page.context.clear_cookies()

    token = await _login_token(page, console_server)
    for n in range(14):  # with the 5 above, 19 failures from this address
        await _post_login(page, console_server, token, f"nobody-{n}", "wrong-password", expect=401)
    await _post_login(page, console_server, token, "nobody-x", "wrong-password", expect=401)  # the 20th
    await _post_login(page, console_server, token, other.login, other_password, expect=429)


async def _login_token(page: Any, base: str) -> str:
    await page.goto(f"{base}/console/login")
    value = await page.get_attribute("input[name=csrf_token]", "value")
    assert value
    return str(value)


async def _post_login(page: Any, base: str, token: str, login: str, password: str, *, expect: int) -> None:
    form = {"csrf_token": token, "login": login, "password": password}
    response = await page.request.post(f"{base}/console/login", form=form, max_redirects=0)
    assert response.status == expect, (login, response.status, re.sub(r"\s+", " ", await response.text())[:300])


def _all() -> Any:
    from notifier.store.audit import AuditFilter

    return AuditFilter()
