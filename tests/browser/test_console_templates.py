"""The templates pages in Chromium: the list, a new template refused with the problem under its box, the
preview with the samples, saving versions and reading an earlier one; markup typed into a template stays text."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.domain.enums import Role
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "模板密码-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'


async def test_an_approver_creates_previews_and_versions_a_template(
    console_server: str, store: Store, page: Any
) -> None:
    approver, one_time = await new_staff(store, name="王审核", role=Role.APPROVER)
    await log_in(page, console_server, approver.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=模板")
    await page.wait_for_selector("#templates")
    names = await page.locator("#templates tbody tr td:first-child").all_text_contents()
    assert {"notice", "heavy-pollution"} <= set(names)
    await axe_check(page)
    await screenshot(page, "console-templates")

    await page.click("#new-template")
    await page.fill("#name", "water-cut")
    await page.fill("#description", f"停水通知{XSS}")
    await page.fill("#fields", "hours | 停水时长 | 3")
    await page.fill("#text-zh-sms", "{{ title }}\n停水{{ hours }}小时" + XSS + "\n风力{{ wind }}级")
    await page.click("#save-button")
    await page.wait_for_selector("#text-zh-sms-error")
    error = await page.text_content("#text-zh-sms-error") or ""
    assert "line 3" in error and "wind" in error, error
    assert await page.get_attribute("#text-zh-sms", "aria-invalid") == "true"
    assert await store.template_version("water-cut") is None
    assert XSS in await page.input_value("#text-zh-sms")  # what was typed comes back, as text
    await axe_check(page)
    await screenshot(page, "console-template-errors")

    await page.fill("#text-zh-sms", "{{ title }}：停水{{ hours }}小时" + XSS)
    await page.click("#preview-button")
    await page.wait_for_selector("#preview-zh-sms")
    preview = await page.text_content("#preview-zh-sms") or ""
    assert preview == "关于启动重污染天气橙色预警的通知：停水3小时" + XSS
    assert await page.locator("#preview img").count() == 0
    assert await store.template_version("water-cut") is None  # a preview saves nothing
    await page.click("#save-button")
    await page.wait_for_url(f"{console_server}/console/templates/water-cut")
    assert "第1版" in (await page.text_content("#template-title") or "").replace(" ", "")
    assert XSS in await page.input_value("#text-zh-sms")
    assert await page.locator("img").count() == 0
    assert await page.evaluate("() => window.__xss") is None
    saved = await store.template_version("water-cut")
    assert saved is not None and saved.department == "environment" and XSS in saved.texts["zh"]["sms"]

    await page.fill("#text-zh-sms", "{{ title }}：停水{{ hours }}小时，请提前储水。")
    await page.click("#save-button")
    await page.wait_for_selector("#versions tbody tr:nth-child(2)")
    assert [v.strip() for v in await page.locator("#versions tbody td:first-child").all_text_contents()] == ["2", "1"]
    assert "请提前储水" in (await page.text_content("#preview-zh-sms") or "")
    await axe_check(page)
    await screenshot(page, "console-template-versions")

    await page.click("#versions a >> text=1")
    await page.wait_for_selector("#old-version")
    assert XSS in await page.input_value("#text-zh-sms")
    assert await page.locator("#save-button").count() == 0
    assert await page.evaluate("() => window.__xss") is None


async def test_an_issuer_reads_templates_and_cannot_save(console_server: str, store: Store, page: Any) -> None:
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{console_server}/console/templates/heavy-pollution")
    await page.wait_for_selector("#preview-zh-sms")
    assert "橙色" in (await page.text_content("#preview-zh-sms") or "")
    assert await page.locator("#save-button").count() == 0
    assert await page.locator("#new-template").count() == 0
    await axe_check(page)
    await screenshot(page, "console-template-readonly")
    response = await page.goto(f"{console_server}/console/templates/new")
    assert response is not None and response.status == 403
