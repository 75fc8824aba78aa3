"""Publicity lists (公示): masking, the per-village printout through the bulletin channel and a real CUPS queue
(pdftotext), the public page and its 410 after the period."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels.bulletin_cups import BulletinChannel, BulletinOptions
from notifier.config import ChannelConfig, Settings
from notifier.domain.enums import ChannelKind
from notifier.domain.masking import mask_cell, mask_id_number, mask_name, mask_phone
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.store.audit import AuditFilter
from notifier.web.public_pages import mask_personal
from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_A2, Api
from tests.cups_peer import CupsPeer, start_cups
from tests.test_bulletin_render import DIVISIONS, need_fonts

A1_ROWS, A2_ROWS = 60, 5


def test_masking_rules() -> None:
    assert mask_name("王秀英") == "王*英" and mask_name("王英") == "王*" and mask_name("欧阳长英") == "欧阳*英"
    assert mask_id_number("370725199001011234") == "370725********1234"
    assert mask_phone("13912345678") == "139****5678" and mask_phone("+86 139 1234 5678") == "139****5678"
    # by look, whatever the column is called; and stricter on request, never looser
    assert mask_cell("备注", "370725199001011234") == "370725********1234"
    assert mask_cell("说明", "电话13912345678") == "电话139****5678"
    assert mask_cell("金额", "800", "full") == "***"
    assert mask_cell("金额", "800") == "800"


def server_today(settings: Settings) -> dt.date:
    """Today as the service counts publicity days: in the server's timezone, not the test machine's."""
    return dt.datetime.now(ZoneInfo(settings.server.timezone)).date()


def id_number(n: int) -> str:
    return f"37072519900101{n:04d}"


async def seed_roster(api: Api, store: Store) -> int:
    rows = []
    for n in range(1, A1_ROWS + A2_ROWS + 1):
        village = VILLAGE_A1 if n <= A1_ROWS else VILLAGE_A2
        phone = f"1391234{n:04d}"
        resident = SubscriberIn(name=f"王{n}英", phone=phone, area_code=village, topics=["social-assistance"])
        await store.create_subscriber(resident, actor="test")
        rows.append({"手机号": phone, "身份证号": id_number(n), "项目": "低保金", "金额": f"{1000 + n}.00"})
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "低保公示", "key": "phone", "rows": rows}
    )
    assert status == 201 and report["matched"] == A1_ROWS + A2_ROWS, report
    return int(report["id"])


def publicity_notice(roster_id: int, start: dt.date, until: dt.date, **changes: Any) -> dict[str, Any]:
    return {
        "topic": "social-assistance",
        "title": "2026年12月城乡低保对象公示",
        "body": "根据有关规定，现将低保对象名单公示如下。",
        "target": {"areas": [TOWN_A]},
        "channels": ["bulletin"],
        "publicity": {
            "roster": roster_id,
            "columns": ["name", "area", "身份证号", "手机号", "项目", "金额"],
            "from": start.isoformat(),
            "until": until.isoformat(),
            "complaint_phone": "0536-6212345",
        },
        **changes,
    }


async def create_approved(api: Api, payload: dict[str, Any]) -> int:
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 201, notice
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/submit", key="civ-issuer"))[0] == 200
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/approve", key="civ-approver"))[0] == 200
    return int(notice["id"])


@pytest.fixture(scope="module")
def cups() -> Iterator[CupsPeer]:
    peer = start_cups(("PUBLICITY",))
    try:
        yield peer
    finally:
        peer.stop()


def pdf_pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [page for page in text.split("\f") if page.strip()]


def qr_code_of_page(pdf: Path, number: int) -> str:
    """What zbarimg reads from page ``number`` of the PDF laid out at 100 dpi."""
    png = pdf.with_name(f"{pdf.stem}-page{number}")
    subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", str(number), "-l", str(number), "-singlefile", str(pdf),
                    str(png)], check=True)  # fmt: skip
    return subprocess.run(["zbarimg", "-q", "--raw", f"{png}.png"], capture_output=True, text=True).stdout.strip()


@pytest.mark.peer("cups")
async def test_each_village_board_prints_only_its_own_rows_masked_and_paginated(
    api: Api, store: Store, settings: Settings, cups: CupsPeer, tmp_path: Path
) -> None:
    need_fonts()
    roster_id = await seed_roster(api, store)
    today = server_today(settings)
    notice_id = await create_approved(api, publicity_notice(roster_id, today, today + dt.timedelta(days=6)))
    board = BulletinChannel(
        "board",
        BulletinOptions.model_validate(
            {
                "public_url": "http://127.0.0.1:8080",
                "county_name": "昌乐县",
                "divisions_csv": str(DIVISIONS),
                "spool_dir": str(tmp_path / "spool"),
                "printers": {VILLAGE_A1: cups.uri("PUBLICITY")},
                "render_workers": 1,
            }
        ),
    )
    config = settings.model_copy(deep=True)
    config.channels["board"] = ChannelConfig(kind=ChannelKind.BULLETIN, type="recording")
    await board.open()
    try:
        await Engine(store, config, {"board": board}).run_until_idle()
    finally:
        await board.close()
    jobs: list[Path] = []
    for _ in range(3000):  # CUPS hands the job to its backend after answering: wait for the file, bounded
        jobs = sorted(cups.jobs.glob("job-*.bin"))
        if jobs:
            break
        await asyncio.sleep(0.05)
    assert len(jobs) == 1, "one printout for the village with a printer"
    printed = tmp_path / "a1.pdf"
    printed.write_bytes(jobs[0].read_bytes())
    pages = pdf_pages(printed)
    whole = "\n".join(pages)
    assert len(pages) >= 2, "60 rows take more than one landscape page"
    feedback = f"http://127.0.0.1:8080/public/notices/{notice_id}/feedback"
    for number, page in enumerate(pages, start=1):
        assert f"第{number}页共{len(pages)}页" in page.replace(" ", "")
        assert "身份证号" in page and "金额" in page  # the table header on every page
        assert "0536-6212345" in page and "公示期" in page
        assert f"意见反馈：{feedback}" in page  # beside the period and the phone, on every page
    for number in (1, len(pages)):  # the QR code of the feedback form, read back from the page as printed
        assert qr_code_of_page(printed, number) == feedback, number
    for n in range(1, A1_ROWS + 1):
        assert f"{1000 + n}.00" in whole
        assert f"370725********{n:04d}" in whole and f"139****{n:04d}" in whole
        assert id_number(n) not in whole and f"1391234{n:04d}" not in whole and f"王{n}英" not in whole
    for n in range(A1_ROWS + 1, A1_ROWS + A2_ROWS + 1):
        assert f"{1000 + n}.00" not in whole  # another village's row
    assert "王*英" in whole
    [spooled] = list((tmp_path / "spool" / VILLAGE_A2).glob("*.pdf"))  # the other village: spool folder
    other = "\n".join(pdf_pages(spooled))
    assert all(f"{1000 + n}.00" in other for n in range(A1_ROWS + 1, A1_ROWS + A2_ROWS + 1))
    assert "1001.00" not in other
    assert notice_id


async def test_public_page_shows_the_masked_list_and_is_gone_after_the_period(
    api: Api, store: Store, settings: Settings
) -> None:
    roster_id = await seed_roster(api, store)
    today = server_today(settings)
    live = await create_approved(api, publicity_notice(roster_id, today - dt.timedelta(days=3), today))
    ended = await create_approved(
        api, publicity_notice(roster_id, today - dt.timedelta(days=10), today - dt.timedelta(days=3))
    )
    status, page = await api.call("GET", f"/public/notices/{live}", key=None)
    assert status == 200, page
    assert "370725********0001" in page and "1065.00" in page and "0536-6212345" in page
    assert f'意见反馈：<a href="/public/notices/{live}/feedback" id="feedback-link">' in page
    status, form = await api.call("GET", f"/public/notices/{live}/feedback", key=None)
    assert status == 200 and 'name="text"' in form  # the link leads to a form that takes feedback
    assert id_number(1) not in page and "13912340001" not in page and "王1英" not in page
    status, page = await api.call("GET", f"/public/notices/{ended}", key=None)
    assert status == 410 and "公示" in page
    assert "/feedback" not in page
    assert "1065.00" not in page
    entries, _ = await store.list_audit(AuditFilter(action="publicity.withdrawn"), None, 10)
    assert [e.object_id for e in entries] == [str(ended)]
    await api.call("GET", f"/public/notices/{ended}", key=None)
    assert len((await store.list_audit(AuditFilter(action="publicity.withdrawn"), None, 10))[0]) == 1  # once
    later = await create_approved(
        api, publicity_notice(roster_id, today + dt.timedelta(days=2), today + dt.timedelta(days=9))
    )
    assert (await api.call("GET", f"/public/notices/{later}", key=None))[0] == 404  # not yet


async def test_publicity_columns_must_be_the_rosters(api: Api, store: Store, settings: Settings) -> None:
    roster_id = await seed_roster(api, store)
    today = server_today(settings)
    payload = publicity_notice(roster_id, today, today)
    payload["publicity"]["columns"] = ["name", "银行卡号"]
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 422 and problem["errors"][0]["loc"] == "publicity.columns.1", problem
    status, problem = await api.call(
        "POST", "/api/v1/notices", key="env-issuer", json={**publicity_notice(roster_id, today, today),
                                                           "topic": "air-quality"}
    )
    assert status == 422 and problem["errors"][0]["loc"] == "publicity.roster", problem


async def test_a_publicity_period_is_at_most_sixty_days(api: Api, store: Store, settings: Settings) -> None:
    """The list is public while its period lasts and its roster is kept until it ends: 0001-01-01 to 9999-12-31
    would publish it for good."""
    roster_id = await seed_roster(api, store)
    today = server_today(settings)
    for until in (today + dt.timedelta(days=60), dt.date(9999, 12, 31)):
        payload = publicity_notice(roster_id, today, until)
        status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
        assert status == 422 and problem["errors"][0]["loc"] == "publicity", problem
        assert "at most 60 days" in problem["errors"][0]["msg"]
    payload = publicity_notice(roster_id, today, today + dt.timedelta(days=59))
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 201, notice


@pytest.mark.peer("cups")
async def test_the_public_page_and_its_feedback_form_mask_numbers_in_the_notices_own_words(
    api: Api, store: Store, settings: Settings
) -> None:
    """The title and text of a publicity notice pass through the masking every public page applies: a mobile
    number or an identity card number a clerk wrote into them is not shown whole to anyone who opens the page."""
    roster_id = await seed_roster(api, store)
    today = server_today(settings)
    words = {
        "title": "城乡低保对象公示（经办人13912345678）",
        "body": "如对名单有异议，请联系经办人王老师13912345678；代领人身份证号370725199001010011。",
    }
    live = await create_approved(api, publicity_notice(roster_id, today - dt.timedelta(days=1), today, **words))
    status, page = await api.call("GET", f"/public/notices/{live}", key=None)
    assert status == 200, page
    assert "139****5678" in page and "370725********0011" in page
    assert "13912345678" not in page and "370725199001010011" not in page
    assert "0536-6212345" in page  # the complaint phone is the department's, shown to be called
    status, form = await api.call("GET", f"/public/notices/{live}/feedback", key=None)
    assert status == 200 and 'name="text"' in form
    assert "139****5678" in form and "13912345678" not in form


@pytest.mark.parametrize(
    ("written", "masked"),
    [  # in any column, however the clerk wrote the number: these went out whole
        ("联系电话+8613912345678", "联系电话+86139****5678"),
        ("电话 8613912345678", "电话 86139****5678"),
        ("电话 139 1234 5678", "电话 139****5678"),
        ("电话 139-1234-5678。", "电话 139****5678。"),
        ("电话 +86 139-1234-5678", "电话 +86 139****5678"),
        ("电话１３９１２３４５６７８", "电话１３９****５６７８"),  # full-width digits, as a Chinese keyboard types them
        ("身份证３７０７２５１９９００１０１１２３Ｘ", "身份证３７０７２５********１２３Ｘ"),
        ("电话13912345678", "电话139****5678"),
        ("香港电话 +85291234567", "香港电话 +852****4567"),  # another country's number, as a log line masks it
        ("香港电话 0085291234567", "香港电话 00852****4567"),
        ("to=%2B85291234567", "to=%2B852****4567"),
        ("订单号 2613912345678 金额 800", "订单号 2613912345678 金额 800"),  # no phone inside a longer number
    ],
)
def test_numbers_in_free_text_are_masked_however_they_are_written(written: str, masked: str) -> None:
    assert mask_cell("备注", written) == masked
    assert mask_personal(written) == masked  # the public pages' texts: the same rules
