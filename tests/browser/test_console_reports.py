"""The reports page in Chromium: a notice sent through the engine (failures, fallbacks, receipts, printouts);
every bar of the page's SVG charts carries the report's figure and is drawn to its length; the figures are
those the test counts from the deliveries; both reports download as CSV and XLSX; each department sees its own
figures and an admin every department's."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from notifier.config import Settings
from notifier.console.charts import BAR_AREA
from notifier.domain.enums import Role
from notifier.reports import assessment_report, period_start, reach_report
from notifier.store import Store
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B
from tests.test_reports import independent_counts, sent_notice

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "报表页面-足够长-2026"
BARS = """els => els.map(e => ({chart: e.closest('svg').id, series: e.dataset.series, key: e.dataset.key,
                               value: e.dataset.value, width: Number(e.getAttribute('width'))}))"""


def _drawn(bars: list[dict[str, Any]], chart: str, series: str) -> dict[str, float | None]:
    found = {}
    for bar in bars:
        if bar["chart"] == chart and bar["series"] == series:
            value = float(bar["value"]) if bar["value"] != "" else None
            # a rate's bar is its share of the whole width; none is drawn without a figure
            assert bar["width"] == (0.0 if value is None else round(BAR_AREA * value, 1)), bar
            found[bar["key"]] = value
    return found


async def test_charts_tables_and_downloads_of_the_reports(
    console_server: str, store: Store, settings: Settings, page: Any
) -> None:
    notice_id, _ = await sent_notice(store, settings)
    counted = await independent_counts(store, notice_id)
    viewer, one_time = await new_staff(store, name="赵统计", role=Role.VIEWER)
    await log_in(page, console_server, viewer.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=统计报表")
    await page.wait_for_selector("#chart-towns")
    await axe_check(page)
    await screenshot(page, "console-reports")

    now = datetime.now(UTC)
    reach = await reach_report(store, period_start(None, "UTC"), now, "environment")
    assessment = await assessment_report(store, settings.approval, period_start(None, "UTC"), now, "environment", now)
    bars = await page.eval_on_selector_all("svg.bar-chart rect.bar", BARS)
    # what each chart draws is the report's figure...
    assert _drawn(bars, "chart-towns", "reach_rate") == {t.town: t.reach_rate for t in reach.towns}
    assert _drawn(bars, "chart-channels", "reach_rate") == {c.channel: c.reach_rate for c in reach.channels}
    assert _drawn(bars, "chart-channels", "sent_rate") == {c.channel: c.sent_rate for c in reach.channels}
    assert _drawn(bars, "chart-departments", "reach_rate") == {"environment": assessment.departments[0].reach_rate}
    assert _drawn(bars, "chart-departments", "on_time_rate") == {"environment": assessment.departments[0].on_time_rate}
    # ...and the report's figure is what the test counts from the deliveries
    towns = _drawn(bars, "chart-towns", "reach_rate")
    assert towns == {town: counted["towns"][town]["reach_rate"] for town in (TOWN_A, TOWN_B)}
    assert all(0 < (rate or 0) < 1 for rate in towns.values())  # partly reached: the bars are not trivial
    assert await page.inner_text("#total-targeted") == str(counted["notice"]["targeted"])
    assert await page.inner_text("#total-reached") == str(counted["notice"]["reached"])
    row = page.locator(f"#notice-{notice_id}")
    assert await row.locator(".failed").inner_text() == f"{counted['notice']['failed']}\nblocked 1; invalid-number 1"

    async with page.expect_download() as download_info:
        await page.click("#download-reach-csv")
    download = await download_info.value
    text = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode("utf-8")
    [notice] = [r for r in csv.DictReader(io.StringIO(text)) if r["scope"] == "notices"]
    assert (notice["key"], int(notice["reached"])) == (str(notice_id), counted["notice"]["reached"])
    async with page.expect_download() as download_info:
        await page.click("#download-departments-xlsx")
    download = await download_info.value
    assert download.suggested_filename == "departments.xlsx"
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    workbook = load_workbook(io.BytesIO(body), read_only=True)
    header, *rows = [list(r) for r in workbook["departments"].iter_rows(values_only=True)]
    [environment] = [dict(zip(header, r, strict=False)) for r in rows]  # read-only rows end at their last value
    assert environment["department"] == "environment" and environment["reached"] == counted["notice"]["reached"]

    response = await page.goto(f"{console_server}/console/reports?from=yesterday")
    assert response.status == 422  # a clear error page, not a 500
    response = await page.goto(f"{console_server}/console/reports?to=9999-12-31T23:59:59-08:00")
    assert response.status == 422 and "query.to" in await page.inner_text("main")  # past the calendar's end
    response = await page.goto(f"{console_server}/console/reports?department=civil-affairs")
    assert response.status == 403  # a department's staff read their own figures only


async def test_each_department_sees_its_own_and_an_admin_every_one(
    console_server: str, store: Store, settings: Settings, browser: Any
) -> None:
    notice_id, _ = await sent_notice(store, settings)
    other, other_password = await new_staff(store, name="周民政", role=Role.VIEWER, department="civil-affairs")
    admin, admin_password = await new_staff(store, name="钱管理", role=Role.ADMIN, department="civil-affairs")
    for member, one_time, sees in ((other, other_password, False), (admin, admin_password, True)):
        context = await browser.new_context(locale="zh-CN")
        page = await context.new_page()
        try:
            await log_in(page, console_server, member.login, one_time, new_password=PASSWORD)
            await page.goto(f"{console_server}/console/reports")
            await page.wait_for_selector("#assessment")
            assert await page.locator(f"#notice-{notice_id}").count() == (1 if sees else 0)
            assert await page.locator("#department").count() == (1 if sees else 0)  # only an admin chooses
            if sees:
                await page.select_option("#department", "civil-affairs")
                await page.click("#period-submit")
                await page.wait_for_url("**department=civil-affairs**")
                assert await page.locator(f"#notice-{notice_id}").count() == 0
                assert await page.locator("#no-notices").count() == 1
        finally:
            await context.close()
