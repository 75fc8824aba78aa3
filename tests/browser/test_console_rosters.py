"""The rosters page in Chromium: upload a roster with Chinese headers and two bad rows, read the report naming
them, download those rows, and preview the publicity list masked as the public page shows it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.domain.models import SubscriberIn
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import VILLAGE_A1, VILLAGE_B1
from tests.databases import read_rows

pytestmark = pytest.mark.peer("chromium")
expect = pytest.importorskip("playwright.async_api").expect

PASSWORD = "名单页面-足够长-2026"
XSS = '<img src=x onerror="window.__xss=1">'


async def test_upload_report_and_masked_publicity_preview(
    console_server: str, store: Store, page: Any, tmp_path: Path
) -> None:
    for person in (
        SubscriberIn(name="王秀英", phone="13812345678", area_code=VILLAGE_A1, topics=["air-quality"]),
        SubscriberIn(name="李建华", phone="13912340000", area_code=VILLAGE_B1, topics=["air-quality"]),
    ):
        await store.create_subscriber(person, "test")
    clerk, one_time = await new_staff(store, department="civil-affairs", name="赵民政", role=Role.ISSUER)
    roster = tmp_path / "低保名单.csv"
    roster.write_text(
        "姓名,手机号,项目,金额\n"
        "王秀英,13812345678,低保金,800\n"
        "李建华,13912340000,低保金,650\n"
        "张三丰,12345,低保金,500\n"  # row 3: not a mobile number
        "赵四海,13700000000,低保金,400\n",  # row 4: nobody has this phone
        encoding="utf-8",
    )
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=名单")
    await page.wait_for_selector("#upload-form")
    await axe_check(page)

    await page.get_by_label("名称").fill(f"低保金{XSS}")
    await page.select_option("#key", "external_id")  # the file has no such column
    await page.set_input_files("#file", str(roster))
    await page.click("#upload-submit")
    await expect(page.locator("#key-error")).to_be_visible()
    assert await store.list_rosters("civil-affairs") == []
    assert await page.input_value("#name") == f"低保金{XSS}"
    await axe_check(page)

    await page.select_option("#key", "phone")
    await page.set_input_files("#file", str(roster))
    await page.click("#upload-submit")
    await page.wait_for_selector("#report")
    assert await page.text_content("#rows") == "4"
    assert await page.text_content("#matched") == "2"
    unmatched = page.locator("#unmatched tbody tr")
    await expect(unmatched).to_have_count(2)
    assert [await cell.text_content() for cell in await page.locator("#unmatched tbody td:first-child").all()] == [
        "3",
        "4",
    ]
    assert "not a valid mobile phone number" in (await unmatched.nth(0).text_content() or "")
    assert "no resident with this phone" in (await unmatched.nth(1).text_content() or "")
    assert await page.text_content("#roster-name") == f"低保金{XSS}"  # text, not markup
    assert await page.locator("main img").count() == 0 and await page.evaluate("window.__xss") is None
    await axe_check(page)
    await screenshot(page, "console-roster-report")

    download = await page.request.get(
        console_server + (await page.locator("#unmatched-csv").get_attribute("href") or "")
    )
    assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO((await download.body()).decode("utf-8-sig"))))
    assert [(r["row"], r["姓名"], r["手机号"]) for r in rows] == [
        ("3", "张三丰", "12345"),
        ("4", "赵四海", "13700000000"),
    ]

    await page.get_by_label("姓名", exact=True).check()
    await page.get_by_label("金额", exact=True).check()
    await page.select_option("#area", VILLAGE_A1)
    await page.click("#preview-submit")
    await expect(page.locator("#publicity tbody tr")).to_have_count(1)  # only the village's own rows
    assert [await c.text_content() for c in await page.locator("#publicity tbody td").all()] == ["1", "王*英", "800"]
    body = await page.text_content("body") or ""
    assert "王秀英" not in body and "李建华" not in body and "李*华" not in body
    await axe_check(page)
    await screenshot(page, "console-roster-publicity")

    await page.select_option("#area", "")
    await page.click("#preview-submit")
    await expect(page.locator("#publicity tbody tr")).to_have_count(2)
    body = await page.text_content("body") or ""
    assert "李*华" in body and "王秀英" not in body and "李建华" not in body

    # a notice to the roster: its page shows the personal texts, filled from the rows, and the read is audited
    roster_id = (await store.list_rosters("civil-affairs"))[0]["id"]
    _, key = await store.create_api_key(department="civil-affairs", role=Role.ISSUER, name="script", actor="test")
    created = await page.request.post(f"{console_server}/api/v1/notices", headers={"Authorization": f"Bearer {key}"},
                                      data={"topic": "social-assistance", "title": "低保金发放通知",
                                            "body": "{{ row.项目 }}{{ row.金额 }}元已发放。", "channels": ["sms"],
                                            "target": {"roster": roster_id}})  # fmt: skip
    assert created.status == 201, await created.text()
    await page.goto(f"{console_server}/console/notices/{(await created.json())['id']}")
    await expect(page.locator("#personal .personal-sample")).to_have_count(2)
    samples = await page.locator("#personal .personal-sample pre").all_text_contents()
    assert "低保金800元已发放。" in samples[0] and "低保金650元已发放。" in samples[1]
    assert "低保金800元" not in (await page.text_content("#messages-title ~ article") or "")  # the shared text
    await axe_check(page)
    reads = await store.db.fetch_all("list_audit", {"after": 0, "limit": 500})
    assert [(r["actor"], r["object_id"]) for r in reads if r["action"] == "roster.read" and '"preview"' in r["detail"]
            ] == [(clerk.actor, str(roster_id))]  # fmt: skip

    await page.goto(f"{console_server}/console/rosters")
    assert f"低保金{XSS}" in (await page.text_content("#rosters") or "")
    assert await page.locator("#rosters img").count() == 0

    other, other_password = await new_staff(store, department="environment", name="钱环保", role=Role.ISSUER)
    await page.context.clear_cookies()
    await log_in(page, console_server, other.login, other_password, new_password=PASSWORD)
    roster_id = (await store.list_rosters("civil-affairs"))[0]["id"]
    assert (await page.request.get(f"{console_server}/console/rosters/{roster_id}")).status == 404
    assert (await page.request.get(f"{console_server}/console/rosters/{roster_id}/unmatched.csv")).status == 404


async def test_an_xlsx_roster_with_direct_sends_to_an_unmatched_rows_phone(
    console_server: str, store: Store, settings: Settings, page: Any, tmp_path: Path
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    await store.create_subscriber(
        SubscriberIn(name="王秀英", phone="13812345678", area_code=VILLAGE_A1, topics=["air-quality"]), "test"
    )
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机号", "金额", "发放日期"])
    sheet.append(["王秀英", "13812345678", 800, dt.datetime(2026, 12, 5)])
    sheet.append(["孙大娘", "13700000000", 650, dt.datetime(2026, 12, 5)])  # nobody has it: reached directly
    sheet.append(["钱不明", "12345", 500, dt.datetime(2026, 12, 5)])  # row 3: no mobile number
    path = tmp_path / "临时救助名单.xlsx"
    book.save(path)
    clerk, one_time = await new_staff(store, department="civil-affairs", name="赵民政", role=Role.ISSUER)
    await log_in(page, console_server, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{console_server}/console/rosters")
    await page.get_by_label("名称").fill("临时救助")
    await page.select_option("#key", "phone")
    await page.set_input_files("#file", str(path))
    await page.get_by_label("直接发送到找不到居民的行的手机号").check()
    await axe_check(page)
    await page.click("#upload-submit")
    await page.wait_for_selector("#report")
    assert (await page.text_content("#rows"), await page.text_content("#matched")) == ("3", "2")
    assert await page.text_content("#direct-count") == "1"
    assert await page.locator("#unmatched tbody td:first-child").all_text_contents() == ["3"]
    await axe_check(page)

    [roster] = await store.list_rosters("civil-affairs")
    rows = await store.roster_rows_page(int(roster["id"]), 0, 10)
    assert [row["cells"]["发放日期"] for row in rows] == ["2026-12-05"] * 3  # Excel dates as days
    contact = await store.find_subscriber_by_phone("+8613700000000")
    [(basis,)] = await read_rows(settings.database.url, "SELECT consent_basis FROM subscribers WHERE id = ?", contact)
    assert basis == "statutory"  # kept for the statutory notice, not as a subscription
