"""The follow-up list in Chromium: from a notice's follow page to the residents who have not confirmed it, per
village with name, address area and phone, narrowed to one village, downloaded as the PDF (read back by
pdftotext); each view audited; another department gets 404, a notice asking for no confirmation 409."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine.confirmations import confirm_by_reply
from notifier.store import Store
from tests.browser.conftest import EngineConsole, axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1
from tests.test_bulletin_render import need_fonts

pytestmark = pytest.mark.peer("chromium")
expect = pytest.importorskip("playwright.async_api").expect

PASSWORD = "未确认名单-密码-2026"
RESIDENTS = [  # name, phone, village
    ("王秀英", "+8613800000011", VILLAGE_A1),
    ("李建华", "+8613800000012", VILLAGE_A1),  # confirms
    ("张桂兰", "+8613800000013", VILLAGE_A2),
    ("赵国强", "+8613800000014", VILLAGE_B1),
]
XSS = '<img src=x onerror="window.__xss=1">'


async def _notice(store: Store, title: str, **fields: Any) -> int:
    notice = NoticeIn.model_validate({
        "topic": "social-assistance", "title": title, "body": "请于12月5日前到村委会领取救助金。",
        "target": {"areas": [TOWN_A, TOWN_B]}, "channels": ["sms"], **fields,
    })  # fmt: skip
    created, _ = await store.create_notice(notice, department="civil-affairs", created_by=None, actor="test")
    await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    return created.id


async def _audits(store: Store) -> list[dict[str, Any]]:
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 500})
    return [row for row in rows if row["action"] == "notice.follow_up"]


async def test_the_unconfirmed_per_village_with_the_pdf_for_the_village_committee(
    engine_console: EngineConsole, page: Any, tmp_path: Path
) -> None:
    served, store = engine_console, engine_console.store
    for name, phone, area in RESIDENTS:
        data = SubscriberIn(name=name, phone=phone, area_code=area, topics=["social-assistance"], channels=["sms"])
        await store.create_subscriber(data, actor="test")
    asking = await _notice(store, f"临时救助金发放通知{XSS}", confirmation={"remind_after_minutes": 60})
    plain = await _notice(store, "冬季取暖提示")
    await served.engine.run_until_idle()
    assert await confirm_by_reply(store, "+8613800000012", "sms") == "confirmed"

    clerk, one_time = await new_staff(store, department="civil-affairs", name="钱村务", role=Role.VIEWER)
    await log_in(page, served.base, clerk.login, one_time, new_password=PASSWORD)
    await page.goto(f"{served.base}/console/notices/{asking}/follow")
    await page.click("#unconfirmed-link")
    await page.wait_for_selector("section.village")
    assert await page.text_content("#notice-title") == f"临时救助金发放通知{XSS}"  # text, not markup
    assert await page.evaluate("window.__xss") is None
    await expect(page.locator("section.village")).to_have_count(3)
    assert await page.text_content("#unconfirmed-count") == "3"
    rows = page.locator("table.unconfirmed tbody tr")
    await expect(rows).to_have_count(3)
    listed = [(await row.locator(".name").text_content(), await row.locator(".phone").text_content())
              for row in await rows.all()]  # fmt: skip
    assert listed == [("王秀英", "+8613800000011"), ("张桂兰", "+8613800000013"), ("赵国强", "+8613800000014")]
    assert "李建华" not in (await page.text_content("main") or "")  # confirmed: nobody needs to visit
    addresses = await page.locator(".address").all_text_contents()
    assert [a.strip() for a in addresses] == ["恒盛社区居民委员会", "昌盛社区居民委员会", "昌明社区居民委员会"]
    await axe_check(page)
    await screenshot(page, "console-unconfirmed")

    await page.select_option("#area", VILLAGE_B1)
    await page.click("#area-submit")
    await expect(page.locator("section.village")).to_have_count(1)
    assert await page.locator("table.unconfirmed .name").all_text_contents() == ["赵国强"]

    href = await page.locator("#follow-up-pdf").get_attribute("href")
    assert href == f"/console/notices/{asking}/unconfirmed.pdf?area={VILLAGE_B1}"
    await page.select_option("#area", "")
    await page.click("#area-submit")
    await expect(page.locator("section.village")).to_have_count(3)
    need_fonts()
    download = await page.request.get(served.base + (await page.locator("#follow-up-pdf").get_attribute("href") or ""))
    assert download.status == 200 and download.headers["content-type"] == "application/pdf"
    (tmp_path / "list.pdf").write_bytes(await download.body())
    pdftotext = await asyncio.create_subprocess_exec(
        "pdftotext", "-layout", str(tmp_path / "list.pdf"), "-", stdout=asyncio.subprocess.PIPE)
    out, _ = await pdftotext.communicate()
    text = out.decode("utf-8")
    assert all(name in text for name in ("王秀英", "张桂兰", "赵国强")) and "李建华" not in text
    assert "+8613800000014" in text

    audits = [(a["actor"], a["object_id"], json.loads(a["detail"])) for a in await _audits(store)]
    assert audits == [
        (clerk.actor, str(asking), {"area": None, "format": "console", "residents": 3}),
        (clerk.actor, str(asking), {"area": VILLAGE_B1, "format": "console", "residents": 1}),
        (clerk.actor, str(asking), {"area": None, "format": "console", "residents": 3}),
        (clerk.actor, str(asking), {"area": None, "format": "pdf", "residents": 3}),
    ]

    answer = await page.request.get(f"{served.base}/console/notices/{plain}/unconfirmed")
    assert answer.status == 409  # a notice asking for no confirmation has no such list
    await page.goto(f"{served.base}/console/notices/{plain}/follow")
    assert await page.locator("#unconfirmed-link").count() == 0

    other, other_password = await new_staff(store, department="environment", name="孙环保", role=Role.ISSUER)
    await page.context.clear_cookies()
    await log_in(page, served.base, other.login, other_password, new_password=PASSWORD)
    for path in (f"/console/notices/{asking}/unconfirmed", f"/console/notices/{asking}/unconfirmed.pdf"):
        assert (await page.request.get(served.base + path)).status == 404
    assert len(await _audits(store)) == 4  # refused reads are not audited as reads
