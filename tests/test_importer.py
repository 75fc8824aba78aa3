"""Bulk import of residents from CSV and XLSX rosters into a real store (SQLite, or PostgreSQL: tests/databases.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped,unused-ignore]
import pytest
from rich.console import Console

import subscribers.importer as importer
import subscribers.sheets as sheets
from notifier.domain.errors import InvalidInput
from notifier.domain.models import Subscriber
from notifier.store import Store
from notifier.store.audit import AuditFilter
from subscribers.importer import import_file, rich_progress
from subscribers.rows import column_name
from subscribers.sheets import Cells, Sheet, cell_text, detect_encoding
from tests.databases import database_url, open_migrated

VILLAGE, OTHER_VILLAGE = "370725001036", "370725002001"
HEADER = "external_id,name,phone,email,area_code,groups,topics,channels,quiet_hours"


@pytest.fixture
async def roster_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await catalog_store(tmp_path, "t.db")
    try:
        yield store
    finally:
        await store.db.close()


async def catalog_store(tmp_path: Path, name: str) -> Store:
    """A migrated store with the areas, topics and groups the test files name."""
    db = await open_migrated(database_url(tmp_path, name))
    store = Store(db)
    await store.upsert_areas(
        [
            ("370725", "昌乐县"),
            ("370725001", "宝都街道"),
            ("370725002", "宝城街道"),
            (VILLAGE, "恒盛社区居民委员会"),
            (OTHER_VILLAGE, "宝城村村民委员会"),
        ]
    )
    for code, name in (("air-quality", "空气质量"), ("social-assistance", "社会救助"), ("education", "教育")):
        await store.upsert_topic(code, name)
    for code, name in (("dibao", "低保对象"), ("elderly-alone", "独居老人"), ("pupils-parents", "中小学生家长")):
        await store.upsert_group(code, name)
    return store


async def residents(store: Store) -> list[Subscriber]:
    items, cursor = await store.list_subscribers(area=None, group=None, topic=None, cursor=None, limit=10000)
    assert cursor is None
    return items


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


MIXED = [
    HEADER,
    f"r-1,王秀英,13812345678,,{VILLAGE},dibao;elderly-alone,social-assistance,sms,22:00-07:00",
    f"r-2,张伟,12345,,{VILLAGE},,,,",  # bad phone
    f"r-3,李娜,13912345678,li.na@@163.com,{VILLAGE},,,,",  # bad email
    "r-4,刘强,13712345678,,370725009001,,,,",  # unknown area
    f"r-5,赵敏,13612345678,,{VILLAGE},veterans,,,",  # unknown group
    f"r-6,孙丽,13812345678,,{VILLAGE},,,,",  # same phone as r-1
    f'r-7,陈静,15012345678,chen.jing@qq.com,{OTHER_VILLAGE},"低保对象、中小学生家长",教育|空气质量,"微信,短信",',
    "",  # a blank line is skipped, its number is kept
    f"r-9,周涛,,,{VILLAGE},,,,25:00-07:00",  # bad quiet hours
]


async def test_csv_with_good_and_bad_rows(roster_store: Store, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "roster.csv", MIXED)
    report = tmp_path / "out" / "errors.csv"
    seen: list[tuple[int, int]] = []

    result = await import_file(
        roster_store, source, actor="test", report_path=report, progress=lambda d, t: seen.append((d, t))
    )

    assert (result.total, result.imported, result.failed, result.existing) == (8, 2, 6, 0)
    assert result.report_path == report and seen[-1] == (8, 8)
    stored = {r.external_id: r for r in await residents(roster_store)}
    assert set(stored) == {"r-1", "r-7"}
    first, seventh = stored["r-1"], stored["r-7"]
    assert first.phone == "+8613812345678" and first.groups == ["dibao", "elderly-alone"]
    assert first.quiet_hours is not None and (first.quiet_hours.start, first.quiet_hours.end) == ("22:00", "07:00")
    assert first.consent.source == "import:roster.csv"
    assert seventh.groups == ["dibao", "pupils-parents"] and seventh.topics == ["air-quality", "education"]
    assert seventh.channels == ["wechat", "sms"] and seventh.email == "chen.jing@qq.com"

    lines = read_report(report)
    assert [(int(e["row"]), e["external_id"], e["field"]) for e in lines] == [
        (3, "r-2", "phone"),
        (4, "r-3", "email"),
        (5, "r-4", "area_code"),
        (6, "r-5", "groups"),
        (7, "r-6", "phone"),
        (10, "r-9", "quiet_hours.start"),
    ]
    text = report.read_text(encoding="utf-8-sig")
    for personal in ("张伟", "12345", "li.na", "13712345678", "孙丽", "13812345678", "周涛"):
        assert personal not in text
    assert "unknown area code 370725009001" in text and "unknown group veterans" in text


async def test_a_bad_row_changes_nothing(roster_store: Store, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "roster.csv", [MIXED[0], MIXED[4], MIXED[5], MIXED[3]])
    result = await import_file(roster_store, source, actor="test", report_path=None)
    assert (result.imported, result.failed) == (0, 3)
    assert await residents(roster_store) == []
    assert [e.row for e in result.errors] == [2, 3, 4]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("name,area_code,phone,shoe_size,备注", ["shoe_size", "备注"]),
        ("name,phone", ["area_code"]),
        ("name,area_code,姓名", ["姓名"]),
    ],
)
async def test_a_wrong_header_stops_the_whole_file(
    roster_store: Store, tmp_path: Path, header: str, expected: list[str]
) -> None:
    source = write_csv(tmp_path / "roster.csv", [header, f"王伟,{VILLAGE},13812345678"])
    with pytest.raises(InvalidInput) as caught:
        await import_file(roster_store, source, actor="test", report_path=tmp_path / "errors.csv")
    assert [e.loc.removeprefix("columns.") for e in caught.value.errors] == expected
    if "shoe_size" in expected:
        assert "shoe_size" in caught.value.detail and "备注" in caught.value.detail
    assert await residents(roster_store) == []


async def test_xlsx_with_numeric_cells_and_chinese_headers(roster_store: Store, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["编号", "姓名", "手机号码", "村居代码", "群体", "订阅主题", "渠道"])
    sheet.append([1001, "王秀英", 13812345678, int(VILLAGE), "低保对象", "社会救助", "短信"])
    sheet.append(["1002", "张伟", 13912345678.0, float(OTHER_VILLAGE), "dibao、pupils-parents", "education", None])
    sheet.append([None] * 7)
    sheet.append(["1004", "李娜", "139123", VILLAGE, None, None, None])
    path = tmp_path / "名单.xlsx"
    workbook.save(path)

    result = await import_file(roster_store, path, actor="test", report_path=tmp_path / "errors.csv")

    assert (result.total, result.imported, result.failed) == (3, 2, 1)
    stored = {r.external_id: r for r in await residents(roster_store)}
    assert stored["1001"].phone == "+8613812345678" and stored["1001"].area_code == VILLAGE
    assert stored["1001"].groups == ["dibao"] and stored["1001"].channels == ["sms"]
    assert stored["1002"].phone == "+8613912345678" and stored["1002"].area_code == OTHER_VILLAGE
    assert stored["1002"].channels == ["wechat", "sms", "wecom", "email"]  # no channel column value: default
    assert [(e.row, e.field) for e in result.errors] == [(5, "phone")]


async def test_gb18030_csv_from_excel(roster_store: Store, tmp_path: Path) -> None:
    lines = ["姓名,电话,区划代码,分组", f"鞠德福,13812345678,{VILLAGE},独居老人", f"逄秀兰,15112345678,{VILLAGE},"]
    source = write_csv(tmp_path / "roster.csv", lines, encoding="gb18030")
    assert detect_encoding(source) == "gb18030"

    result = await import_file(roster_store, source, actor="test", report_path=None)

    assert (result.imported, result.failed) == (2, 0)
    names = sorted(r.name for r in await residents(roster_store))
    assert names == ["逄秀兰", "鞠德福"]


async def test_utf8_csv_with_bom(roster_store: Store, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "roster.csv", ["name,area_code", f"王伟,{VILLAGE}"], encoding="utf-8-sig")
    assert detect_encoding(source) == "utf-8-sig"
    result = await import_file(roster_store, source, actor="test", report_path=None)
    assert result.imported == 1


async def test_reimport_reports_duplicates_and_imports_nothing_twice(roster_store: Store, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "roster.csv", MIXED)
    await import_file(roster_store, source, actor="test", report_path=None)
    report = tmp_path / "again.csv"

    again = await import_file(roster_store, source, actor="test", report_path=report)

    assert (again.imported, again.failed) == (0, 8)
    assert len(await residents(roster_store)) == 2
    duplicates = [(int(e["row"]), e["field"]) for e in read_report(report) if "resident" in e["message"]]
    assert duplicates == [(2, "external_id"), (7, "phone"), (8, "external_id")]

    skipped = await import_file(roster_store, source, actor="test", report_path=None, existing="skip")
    assert (skipped.imported, skipped.existing, skipped.failed) == (0, 2, 6)


async def test_phone_without_external_id_is_a_duplicate_too(roster_store: Store, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", ["name,phone,area_code", f"王伟,13812345678,{VILLAGE}"])
    await import_file(roster_store, source, actor="test", report_path=None)
    again = await import_file(roster_store, source, actor="test", report_path=None)
    assert (again.imported, again.failed) == (0, 1)
    assert again.errors[0].field == "phone" and "13812345678" not in again.errors[0].message


async def test_many_rows_in_several_batches(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", 7)
    lines = ["external_id,name,phone,area_code,topics"]
    lines += [f"x-{i},居民{i},138{i:08d},{VILLAGE},air-quality" for i in range(50)]
    lines.insert(20, f"x-dup,重复,138{3:08d},{VILLAGE},")  # duplicate phone inside a batch
    seen: list[tuple[int, int]] = []
    source = write_csv(tmp_path / "many.csv", lines)

    result = await import_file(
        roster_store, source, actor="t", report_path=None, progress=lambda d, t: seen.append((d, t))
    )

    assert (result.total, result.imported, result.failed) == (51, 50, 1)
    assert result.errors[0].row == 21
    assert seen[0] == (7, 51) and seen[-1] == (51, 51)
    stored = await residents(roster_store)
    assert all(r.topics == ["air-quality"] for r in stored)


async def test_the_file_is_opened_and_read_off_the_event_loop(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # opening a workbook and reading its rows takes seconds for a large one (its shared texts): in the web
    # process (the console's import) the event loop must answer meanwhile. Each step here asks the loop to
    # answer and waits for it, which on the loop's own thread can never happen.
    loop = asyncio.get_running_loop()
    real_open_sheet = importer.open_sheet

    def loop_answers() -> None:
        answered = threading.Event()
        loop.call_soon_threadsafe(answered.set)
        assert answered.wait(10), "the file was read on the event loop's thread"

    def watched_rows(rows: Iterator[tuple[int, Cells]]) -> Iterator[tuple[int, Cells]]:
        for row in rows:
            loop_answers()
            yield row

    @contextmanager
    def watched_open_sheet(path: Path) -> Iterator[Sheet]:
        loop_answers()
        with real_open_sheet(path) as sheet:
            sheet.rows = watched_rows(sheet.rows)
            yield sheet

    monkeypatch.setattr(importer, "open_sheet", watched_open_sheet)
    result = await import_file(roster_store, write_csv(tmp_path / "r.csv", MIXED[:3]), actor="t", report_path=None)
    assert (result.total, result.imported, result.failed) == (2, 1, 1)


async def test_an_import_cancelled_while_its_rows_are_read_ends_cancelled(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a shutdown cancels a console import; the thread reading its rows cannot be stopped, so the sheet must not
    # be closed under it ("generator already executing" instead of the cancellation)
    opened, reading, go_on = threading.Event(), threading.Event(), threading.Event()
    real_open_sheet, real_cell_text = importer.open_sheet, sheets.cell_text

    def held_cell_text(value: Any) -> str | None:
        if opened.is_set():  # a row being read, inside the sheet's reader
            reading.set()
            assert go_on.wait(10)
        return real_cell_text(value)

    @contextmanager
    def watched_open_sheet(path: Path) -> Iterator[Sheet]:
        with real_open_sheet(path) as sheet:
            opened.set()
            yield sheet

    monkeypatch.setattr(importer, "open_sheet", watched_open_sheet)
    monkeypatch.setattr(sheets, "cell_text", held_cell_text)
    task = asyncio.create_task(import_file(roster_store, write_csv(tmp_path / "r.csv", MIXED[:3]), actor="t",
                                           report_path=None))  # fmt: skip
    assert await asyncio.to_thread(reading.wait, 10)
    task.cancel()
    asyncio.get_running_loop().call_soon(go_on.set)  # after the task has taken the cancellation
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_clean_file_is_written_batch_by_batch_with_its_audit_entries_chained(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No batch falls back to one transaction per row (on PostgreSQL, 25 times slower: the demo's 3,000
    residents took two minutes), and the batch's entries extend the one audit chain."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 7)
    await roster_store.audit("test", "before.import", "thing", 1)
    before = (await roster_store.verify_audit_chain()).count
    lines = ["external_id,name,phone,area_code"] + [f"c-{i},居民{i},139{i:08d},{VILLAGE}" for i in range(20)]
    with caplog.at_level(logging.INFO, logger="subscribers.importer"):
        result = await import_file(roster_store, write_csv(tmp_path / "c.csv", lines), actor="t", report_path=None)

    assert (result.imported, result.failed) == (20, 0)
    assert not [r for r in caplog.records if "replaying row by row" in r.getMessage()]
    entries, _ = await roster_store.list_audit(AuditFilter(action="subscriber.create"), None, 100)
    assert len(entries) == 20 and all(entry.actor == "t" for entry in entries)
    chain = await roster_store.verify_audit_chain()
    assert chain.broken is None and chain.count == before + 20 + 1  # and the import's own entry


async def test_a_batch_audits_each_resident_as_the_row_by_row_path_does(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file imported in batches and, into a second store, one row per transaction through
    Store.create_subscriber: each resident's subscriber.create entry holds the same detail."""
    lines = [line for line in MIXED if line.startswith(("external_id", "r-1,", "r-7,"))]
    lines.append(f"r-8,吴刚,,wu.gang@example.cn,{VILLAGE},pupils-parents,,email,")
    source = write_csv(tmp_path / "audited.csv", lines)

    async def details(store: Store) -> dict[str, dict[str, Any]]:
        entries, _ = await store.list_audit(AuditFilter(action="subscriber.create"), None, 100)
        by_id = {r.id: r.external_id for r in await residents(store)}
        return {by_id[int(entry.object_id or 0)] or "": entry.detail for entry in entries}

    batch = await import_file(roster_store, source, actor="t", report_path=None)
    row_store = await catalog_store(tmp_path, "rows.db")
    try:

        async def refuse(*args: Any) -> list[Any]:
            raise RuntimeError("the batch is refused: replayed row by row")

        monkeypatch.setattr(importer, "_write_batch", refuse)
        by_row = await import_file(row_store, source, actor="t", report_path=None)
        assert (batch.imported, by_row.imported) == (3, 3)
        expected = await details(row_store)
    finally:
        await row_store.db.close()
    found = await details(roster_store)
    assert sorted(found) == ["r-1", "r-7", "r-8"] and found == expected
    assert found["r-7"]["after"]["groups"] == ["dibao", "pupils-parents"]  # the fields, not only the area
    assert "15012345678" not in str(found)  # masked by the log, as the row-by-row entries are


async def test_a_refused_batch_is_replayed_row_by_row(
    roster_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the database refuse a row half-way through a batch, nothing of the batch stays half-written."""
    real = importer.subscriber_row

    def refuse_third(data: Any, now: str) -> dict[str, Any]:
        params = real(data, now)
        if data.external_id == "b-3":
            params["area_code"] = "370725999999"  # not in areas: the foreign key refuses it
        return params

    monkeypatch.setattr(importer, "subscriber_row", refuse_third)
    lines = ["external_id,name,area_code,groups"] + [f"b-{i},居民{i},{VILLAGE},dibao" for i in range(1, 6)]
    result = await import_file(roster_store, write_csv(tmp_path / "b.csv", lines), actor="t", report_path=None)

    assert (result.imported, result.failed) == (5, 0)
    stored = await residents(roster_store)
    assert sorted(r.external_id or "" for r in stored) == [f"b-{i}" for i in range(1, 6)]
    assert all(r.groups == ["dibao"] for r in stored)


async def test_unreadable_files(roster_store: Store, tmp_path: Path) -> None:
    for path, content in ((tmp_path / "roster.pdf", b"%PDF"), (tmp_path / "fake.xlsx", b"not a zip")):
        path.write_bytes(content)
        with pytest.raises(InvalidInput):
            await import_file(roster_store, path, actor="t", report_path=None)
    with pytest.raises(InvalidInput):
        await import_file(roster_store, tmp_path / "missing.csv", actor="t", report_path=None)
    with pytest.raises(InvalidInput):
        await import_file(roster_store, write_csv(tmp_path / "empty.csv", [""]), actor="t", report_path=None)


def test_cells_and_headers() -> None:
    assert cell_text(13812345678.0) == "13812345678"
    assert cell_text(370725001036) == "370725001036"
    assert cell_text("  ") is None and cell_text(None) is None
    assert cell_text(1.5) == "1.5"
    assert column_name("\ufeffexternal_id") == "external_id"
    assert column_name("Area Code") == "area_code"
    assert column_name("手机号*") == "phone"
    assert column_name("备注") is None


def test_rich_progress_draws_a_bar() -> None:
    out = io.StringIO()
    with rich_progress("Importing", console=Console(file=out, force_terminal=False, width=100)) as progress:
        progress(5, 0)
        progress(10, 10)
    assert "10/10" in out.getvalue()
