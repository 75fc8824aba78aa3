"""Relief rosters through the real HTTP API and engine: upload with the per-row report, personal SMS read back
from the outbox, field checks at creation, the preview's samples, ownership, erasure."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openpyxl import Workbook

from channels import load_channels
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.store.audit import AuditFilter
from subscribers.roster_rows import MAX_CELL
from tests.conftest import VILLAGE_A1, VILLAGE_A2, Api

BODY = "{{ row.姓名 }}您好：您的{{ row.项目 }}{{ row.金额 }}元已于{{ row.发放日期 }}发放，请查收。"
BAD_ROWS = {17: "not a valid mobile phone number", 88: "no resident with this phone", 150: "empty phone"}


def phone(number: int) -> str:
    return f"1391234{number:04d}"


async def add_residents(store: Store, count: int) -> None:
    for number in range(1, count + 1):
        resident = SubscriberIn(
            name=f"王{number}英",
            phone=phone(number),
            area_code=VILLAGE_A1 if number % 2 else VILLAGE_A2,
            topics=["social-assistance"],
            channels=["sms"],
        )
        await store.create_subscriber(resident, actor="test")


def roster_workbook(path: Path, rows: int = 200) -> dict[int, str]:
    """A roster with Chinese headers and Excel dates; the amount of each good row, by data row number."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号", "项目", "金额", "发放日期"])
    amounts = {}
    for number in range(1, rows + 1):
        cell: Any = int(phone(number))  # Excel keeps a typed phone number as a number
        if number == 17:
            cell = "1234"
        elif number == 88:
            cell = phone(9999)  # nobody has it
        elif number == 150:
            cell = None
        amount = round(300 + number * 1.25, 2)
        sheet.append([f"王{number}英", cell, "低保金", amount, dt.datetime(2026, 12, number % 28 + 1)])
        if number not in BAD_ROWS:
            amounts[number] = f"{amount:g}"
    book.save(path)
    return amounts


async def upload(api: Api, path: Path, key: str = "civ-issuer", **fields: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("name", fields.get("name", "2026年12月低保金发放"))
    form.add_field("key", fields.get("key", "phone"))
    form.add_field("file", await asyncio.to_thread(path.read_bytes), filename=path.name)
    return await api.call("POST", "/api/v1/rosters", key=key, data=form)


async def approve(api: Api, notice_id: int) -> None:
    status, body = await api.call("POST", f"/api/v1/notices/{notice_id}/submit", key="civ-issuer")
    assert status == 200, body
    status, body = await api.call("POST", f"/api/v1/notices/{notice_id}/approve", key="civ-approver")
    assert status == 200, body


def relief_notice(roster_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "topic": "social-assistance",
        "title": "低保金发放通知",
        "body": BODY,
        "target": {"roster": roster_id},
        "channels": ["sms"],
        **changes,
    }


async def test_xlsx_roster_gives_each_resident_their_own_amount(
    api: Api, store: Store, settings: Settings, tmp_path: Path
) -> None:
    await add_residents(store, 200)
    amounts = roster_workbook(tmp_path / "低保名单.xlsx")
    status, report = await upload(api, tmp_path / "低保名单.xlsx")
    assert status == 201, report
    assert report["rows"] == 200 and report["matched"] == 197
    assert report["unmatched"] == [{"row": row, "reason": reason} for row, reason in sorted(BAD_ROWS.items())]

    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=relief_notice(report["id"]))
    assert status == 201, notice
    await approve(api, notice["id"])
    channels = load_channels(settings)
    for channel in channels.values():
        await channel.open()
    await Engine(store, settings, channels).run_until_idle()

    files = sorted((tmp_path / "outbox" / "sms").glob("*.txt"))
    assert len(files) == 197
    seen = {}
    for file in files:
        text = file.read_text(encoding="utf-8")
        to = re.search(r"^To: \+86(\d+)$", text, re.MULTILINE)
        found = re.search(r"王(\d+)英您好：您的低保金([0-9.]+)元已于2026-12-(\d\d)发放", text)
        assert to and found, text
        number = int(found.group(1))
        assert to.group(1) == phone(number)  # the text of row N went to the resident of row N
        assert found.group(2) == amounts[number]
        assert int(found.group(3)) == number % 28 + 1  # an Excel date reads as the date
        seen[number] = found.group(2)
    assert seen == amounts


async def test_a_field_the_roster_lacks_is_refused_at_creation(api: Api, store: Store) -> None:
    await add_residents(store, 3)
    rows = [{"手机号": phone(n), "姓名": f"王{n}英", "金额": "500"} for n in (1, 2, 3)]
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "临时救助", "key": "phone", "rows": rows}
    )
    assert status == 201 and report["matched"] == 3, report
    before = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    payload = relief_notice(report["id"], body="{{ row.姓名 }}：{{ row.金额 }}元，{{ row.银行 }}代发")
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 422, problem
    assert [e["loc"] for e in problem["errors"]] == ["row.银行"]
    filtered = relief_notice(report["id"], body="{{ row.金额 | int }}元")
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=filtered)
    assert status == 422 and problem["errors"][0]["loc"] == "body", problem
    after = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    assert len(after[0]) == len(before[0])  # nothing stored
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=relief_notice(report["id"]))
    assert status == 422  # BODY uses 项目 and 发放日期, which this roster lacks
    ok = relief_notice(report["id"], body="{{ row.姓名 }}：{{ row.金额 }}元")
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=ok)
    assert status == 201, notice


async def test_row_placeholders_need_a_roster(api: Api) -> None:
    payload = {"topic": "air-quality", "title": "t", "body": "{{ row.金额 }}", "target": {"areas": [VILLAGE_A1]}}
    status, problem = await api.call("POST", "/api/v1/notices", json=payload)
    assert status == 422 and problem["errors"][0]["loc"] == "body", problem
    plain = {**payload, "body": "大括号 {{ 不是占位符"}  # a body without row placeholders stays plain text
    status, notice = await api.call("POST", "/api/v1/notices", json=plain)
    assert status == 201, notice


async def test_only_the_owner_department_reads_or_deletes_a_roster(api: Api, store: Store) -> None:
    await add_residents(store, 2)
    rows = [{"手机号": phone(1), "金额": "1"}, {"手机号": phone(2), "金额": "2"}]
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "r", "key": "phone", "rows": rows}
    )
    assert status == 201
    path = f"/api/v1/rosters/{report['id']}"
    assert (await api.call("GET", path, key="env-issuer"))[0] == 404
    assert (await api.call("GET", path + "/rows", key="env-viewer"))[0] == 404
    assert (await api.call("DELETE", path, key="env-issuer"))[0] == 404
    status, body = await api.call("GET", path + "/rows", key="civ-viewer")
    assert status == 200 and [r["cells"]["金额"] for r in body["items"]] == ["1", "2"]
    status, body = await api.call("GET", path, key="env-admin")
    assert status == 200 and body["matched"] == 2
    assert (await api.call("DELETE", path, key="civ-issuer"))[0] == 204
    status, body = await api.call("GET", path, key="civ-viewer")
    assert body["erased_at"] is not None
    assert (await api.call("GET", path + "/rows", key="civ-viewer"))[1]["items"] == []
    actions = [e.action for e in (await store.list_audit(_all(), None, 100))[0]]
    assert "roster.upload" in actions and "roster.read" in actions and "roster.erase" in actions


def _all() -> Any:
    from notifier.store.audit import AuditFilter

    return AuditFilter()


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
async def test_csv_roster_in_gb18030_or_utf8(api: Api, store: Store, tmp_path: Path, encoding: str) -> None:
    await add_residents(store, 2)
    path = tmp_path / "名单.csv"
    path.write_text(f"手机号,姓名,金额\n{phone(1)},王1英,800\n\n{phone(7)},王7英,900\n", encoding=encoding)
    status, report = await upload(api, path)
    assert status == 201, report
    assert report["columns"] == ["手机号", "姓名", "金额"]
    # the blank row keeps its number
    assert report["unmatched"] == [{"row": 3, "reason": "no resident with this phone"}]


async def test_a_cell_longer_than_a_roster_keeps_is_refused_not_cut(api: Api, store: Store, tmp_path: Path) -> None:
    """A cell is kept whole or the roster is refused naming it: a cut cell would reach a resident as a cut text."""
    await add_residents(store, 2)
    path = tmp_path / "名单.csv"
    rows = f"{phone(1)},{'甲' * MAX_CELL}\n{phone(2)},{'乙' * (MAX_CELL + 1)}\n"
    path.write_text(f"手机号,备注\n{rows}", encoding="utf-8")
    status, problem = await upload(api, path)
    assert status == 422, problem
    [error] = problem["errors"]
    assert error["loc"] == "rows.2.备注" and str(MAX_CELL) in error["msg"], error
    assert (await api.call("GET", "/api/v1/rosters/1", key="civ-issuer"))[0] == 404  # nothing stored
    path.write_text(f"手机号,备注\n{phone(1)},{'甲' * MAX_CELL}\n", encoding="utf-8")
    status, report = await upload(api, path)
    assert status == 201, report


async def test_preview_shows_three_recipients_and_the_longest_sms(api: Api, store: Store) -> None:
    await add_residents(store, 5)
    amounts = ["800", "1200", "95", "66000", "7"]
    rows = [{"手机号": phone(n), "姓名": f"王{n}英", "金额": a} for n, a in zip(range(1, 6), amounts, strict=True)]
    rows[2]["姓名"] = "欧阳" + "长" * 60 + "英"  # row 3's SMS is the longest: two parts, not one
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "r", "key": "phone", "rows": rows}
    )
    assert status == 201
    body = "{{ row.姓名 }}：您的救助金{{ row.金额 }}元已发放。"
    payload = relief_notice(report["id"], body=body, channels=["sms", "wechat"])
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 201, notice
    status, preview = await api.call("GET", f"/api/v1/notices/{notice['id']}/preview", key="civ-issuer")
    assert status == 200, preview
    samples = preview["personal"]["samples"]
    assert [s["row"] for s in samples] == [1, 2, 3]
    assert "王1英：您的救助金800元已发放。" in samples[0]["texts"]["sms"]
    assert "王2英：您的救助金1200元已发放。" in samples[1]["texts"]["wechat"]
    longest = preview["personal"]["longest_sms"]
    assert longest["row"] == 3 and longest["parts"] == 2 and "95元" in longest["text"]
    assert longest["parts_all_recipients"] == 2 + 4 * 1

    # the draft preview (before the notice exists, as the console's compose page asks) fills the same cells
    status, draft = await api.call("POST", "/api/v1/notice-preview", key="civ-issuer", json=payload)
    assert status == 200, draft
    assert draft["personal"] == preview["personal"]
    reads, _ = await store.list_audit(AuditFilter(action="roster.read"), None, 10)
    # the notice's preview and the draft's: three samples and the longest SMS (row 3, among them) were shown
    assert [(r.object_id, r.detail) for r in reads] == [(str(report["id"]), {"rows": 3, "preview": True})] * 2
    assert len({r.actor for r in reads}) == 1 and reads[0].actor.startswith("apikey:")
    status, other = await api.call("POST", "/api/v1/notice-preview", key="env-issuer",
                                   json={**payload, "topic": "air-quality"})
    assert status in (403, 404, 422), other  # another department's roster: refused, nothing of it shown
    assert "王1英" not in str(other)


async def test_cli_rosters_import_prints_the_per_row_report(store: Store, settings: Settings, tmp_path: Path) -> None:
    from tests.test_cli import run_cli

    await add_residents(store, 200)
    roster_workbook(tmp_path / "名单.xlsx")
    code, out, err = await run_cli(
        "rosters",
        "import",
        str(tmp_path / "名单.xlsx"),
        "--department",
        "civil-affairs",
        "--key",
        "phone",
        db_url=settings.database.url,
    )
    assert code == 3, err  # some rows reach nobody
    lines = out.strip().splitlines()
    assert lines[0].endswith("rows 200, matched 197 (direct 0), unmatched 3")
    assert lines[1:] == [f"row {row}: {reason}" for row, reason in sorted(BAD_ROWS.items())]
    code, _, err = await run_cli(
        "rosters",
        "import",
        str(tmp_path / "名单.xlsx"),
        "--department",
        "nowhere",
        "--key",
        "phone",
        db_url=settings.database.url,
    )
    assert code == 2 and "nowhere" in err


async def test_direct_rows_reach_their_phone_and_no_other_notice(
    api: Api, store: Store, settings: Settings, tmp_path: Path
) -> None:
    await add_residents(store, 1)
    rows = [{"手机号": phone(1), "姓名": "王1英", "金额": "10"}, {"手机号": phone(5), "姓名": "李5华", "金额": "20"}]
    status, report = await api.call(
        "POST",
        "/api/v1/rosters",
        key="civ-issuer",
        json={"name": "r", "key": "phone", "rows": rows, "direct": True},
    )
    assert status == 201 and report["matched"] == 2 and report["direct"] == 1 and report["unmatched"] == [], report
    status, notice = await api.call(
        "POST", "/api/v1/notices", key="civ-issuer", json=relief_notice(report["id"], body="{{ row.金额 }}元")
    )
    assert status == 201, notice
    await approve(api, notice["id"])
    county_wide = {
        "topic": "social-assistance",
        "title": "全县通知",
        "body": "全县",
        "target": {"areas": ["370725"]},
        "channels": ["sms"],
    }
    status, plain = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=county_wide)
    assert status == 201
    await approve(api, plain["id"])
    channels = load_channels(settings)
    for channel in channels.values():
        await channel.open()
    await Engine(store, settings, channels).run_until_idle()
    texts = [file.read_text(encoding="utf-8") for file in (tmp_path / "outbox" / "sms").glob("*.txt")]
    to_direct = [text for text in texts if f"To: +86{phone(5)}" in text]
    assert len(to_direct) == 1 and "20元" in to_direct[0]  # the statutory notice, and not the county-wide one
    assert len([text for text in texts if f"To: +86{phone(1)}" in text]) == 2


async def test_a_saved_template_reading_a_column_the_roster_lacks_is_refused(api: Api, store: Store) -> None:
    template = {
        "name": "relief-payment",
        "texts": {"zh": {"default": "{{ row.姓名 }}：{{ title }}，{{ row.金额 }}元由{{ row.银行 }}代发。"}},
    }
    status, saved = await api.call("POST", "/api/v1/templates", key="civ-approver", json=template)
    assert status == 201, saved
    await add_residents(store, 1)
    rows = [{"手机号": phone(1), "姓名": "王1英", "金额": "500"}]
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "r", "key": "phone", "rows": rows}
    )
    payload = relief_notice(report["id"], template="relief-payment")
    del payload["body"]
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 422, problem
    assert [e["loc"] for e in problem["errors"]] == ["row.银行"]
    rows = [{"手机号": phone(1), "姓名": "王1英", "金额": "500", "银行": "农商银行"}]
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "r2", "key": "phone", "rows": rows}
    )
    payload["target"] = {"roster": report["id"]}
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 201, notice
    status, preview = await api.call("GET", f"/api/v1/notices/{notice['id']}/preview", key="civ-issuer")
    assert preview["personal"]["samples"][0]["texts"]["sms"].startswith("王1英：低保金发放通知，500元由农商银行代发。")


async def test_a_roster_in_use_by_a_notice_not_ended_cannot_be_deleted(api: Api, store: Store) -> None:
    await add_residents(store, 1)
    rows = [{"手机号": phone(1), "金额": "1"}]
    status, report = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "r", "key": "phone", "rows": rows}
    )
    payload = relief_notice(report["id"], body="{{ row.金额 }}元")
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 201
    status, problem = await api.call("DELETE", f"/api/v1/rosters/{report['id']}", key="civ-issuer")
    assert status == 409 and str(notice["id"]) in problem["detail"], problem
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/cancel", key="civ-issuer"))[0] == 200
    assert (await api.call("DELETE", f"/api/v1/rosters/{report['id']}", key="civ-issuer"))[0] == 204
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=payload)
    assert status == 422 and problem["errors"][0]["loc"] == "target.roster", problem
