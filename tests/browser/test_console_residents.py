"""The residents page in Chromium: search within the department's residents, open one, export, and import a
roster whose bad rows come back in a downloadable per-row report."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from notifier.domain.enums import Role
from notifier.domain.models import SubscriberIn
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_B, VILLAGE_A1, VILLAGE_B1

pytestmark = pytest.mark.peer("chromium")
expect = pytest.importorskip("playwright.async_api").expect

PASSWORD = "居民页面-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'


async def residents(store: Store) -> dict[str, int]:
    people = {
        "wang": SubscriberIn(name="王秀英", phone="13812345678", area_code=VILLAGE_A1, topics=["air-quality"],
                             consent_source="paper form"),
        "xss": SubscriberIn(name=f"张伟{XSS}", phone="13912340000", area_code=VILLAGE_B1, topics=["air-quality"]),
        "dibao": SubscriberIn(name="李低保", phone="13712349999", area_code=VILLAGE_A1, groups=["dibao"]),
    }  # fmt: skip
    return {key: (await store.create_subscriber(person, "test")).id for key, person in people.items()}


async def audit_actions(store: Store) -> list[str]:
    return [row["action"] for row in await store.db.fetch_all("list_audit", {"after": 0, "limit": 1000})]


async def test_search_open_and_export_within_the_department(console_server: str, store: Store, page: Any) -> None:
    ids = await residents(store)
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=居民")
    await page.wait_for_selector("#search-form")
    await axe_check(page)

    await page.get_by_label("手机号（末几位）").fill("5678")
    await page.click("#search-submit")
    await expect(page.locator("#found tbody tr")).to_have_count(1)
    assert await page.text_content("#found tbody") is not None
    assert "王秀英" in (await page.text_content("#found tbody") or "")

    await page.get_by_label("手机号（末几位）").fill("")
    await page.select_option("#area", TOWN_B)
    await page.click("#search-submit")
    await expect(page.locator("#found tbody tr")).to_have_count(1)
    assert XSS in (await page.text_content("#found tbody") or "")  # the name is text, not markup
    assert await page.locator("#found img").count() == 0 and await page.evaluate("window.__xss") is None

    await page.select_option("#area", "")
    await page.click("#search-all")
    await expect(page.locator("#found tbody tr")).to_have_count(2)  # 李低保 is in no topic or group of the department
    assert "李低保" not in (await page.text_content("#found") or "")
    assert await page.locator("#group option").count() == 1  # the environment department works with no group
    await axe_check(page)
    await screenshot(page, "console-residents")

    export = await page.request.get(console_server + (await page.locator("#export-link").get_attribute("href") or ""))
    assert export.status == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await export.body()).decode("utf-8-sig"))))
    assert sorted(r["name"] for r in rows) == sorted(["王秀英", f"张伟{XSS}"])

    await page.click(f"a[href='/console/residents/{ids['wang']}']")
    await page.wait_for_selector("#contacts")
    assert "+8613812345678" in (await page.text_content("#contacts") or "")
    assert "paper form" in (await page.text_content("#consent") or "")
    assert "subscriber.create" in (await page.text_content("#history") or "")
    await axe_check(page)
    await screenshot(page, "console-resident")
    assert (await page.request.get(f"{console_server}/console/residents/{ids['dibao']}")).status == 404
    actions = await audit_actions(store)
    assert actions.count("subscriber.list") == 3 and "subscriber.export" in actions
    assert actions.count("subscriber.read") == 1  # the refused read of 李低保 is no read


async def test_import_with_progress_and_a_per_row_report(
    console_server: str, store: Store, page: Any, tmp_path: Path
) -> None:
    clerk, one_time = await new_staff(store, department="civil-affairs", name="赵民政", role=Role.ISSUER)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "external_id,name,phone,area_code,groups,topics\n"
        f"m-1,周大爷,13800001111,{VILLAGE_A1},dibao,social-assistance\n"
        f"m-2,吴奶奶,12345,{VILLAGE_A1},elderly-alone,\n"  # bad phone
        f"m-3,郑先生,13800002222,{VILLAGE_A1},disabled,\n"  # a group civil affairs does not work with
        f"m-4,{XSS},13800003333,{VILLAGE_B1},,social-assistance\n",
        encoding="utf-8",
    )
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{console_server}/console/residents")
    await page.set_input_files("#file", str(roster))
    await page.click("#import-submit")
    await page.wait_for_selector("#import-result")  # the status page reloads itself until the import is done
    job_url = page.url
    assert await page.text_content("#import-imported") == "2"
    assert await page.text_content("#import-failed") == "2"
    await axe_check(page)
    await screenshot(page, "console-residents-import")

    report = await page.request.get(console_server + (await page.locator("#import-report").get_attribute("href") or ""))
    assert report.status == 200
    lines = list(csv.DictReader(io.StringIO((await report.body()).decode("utf-8-sig"))))
    assert [(r["row"], r["external_id"], r["field"]) for r in lines] == [("3", "m-2", "phone"), ("4", "m-3", "groups")]
    assert "does not work with group disabled" in lines[1]["message"]
    stored, _ = await store.list_subscribers(area=None, group=None, topic=None, cursor=None, limit=10)
    assert sorted(s.external_id or "" for s in stored) == ["m-1", "m-4"]

    await page.goto(f"{console_server}/console/residents?name=%3Cimg")
    await expect(page.locator("#found tbody tr")).to_have_count(1)
    assert await page.locator("#found img").count() == 0 and await page.evaluate("window.__xss") is None

    other, other_password = await new_staff(store, department="civil-affairs", name="钱民政", role=Role.ISSUER)
    await page.context.clear_cookies()
    await log_in(page, console_server, other.login, other_password, new_password=PASSWORD)
    assert (await page.request.get(job_url)).status == 404  # an import is seen only by whoever started it
    assert (await page.request.get(job_url + "/report.csv")).status == 404
