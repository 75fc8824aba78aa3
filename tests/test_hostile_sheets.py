"""Hostile XLSX uploads: a few kilobytes that unpack, pad or number their way to gigabytes or hours, and cells
openpyxl cannot read, are refused naming the file, before the work is done (``subscribers.sheets``)."""

from __future__ import annotations

import asyncio
import resource
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from notifier.domain.errors import InvalidInput
from subscribers.roster_rows import read_roster_file
from subscribers.sheets import open_sheet
from tests.conftest import Api

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"
HEADER = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>phone</t></is></c></row>'
)
EXCEL_COLUMNS = 16_384
MAX_PARTS_BYTES = 16 << 20  # subscribers.sheets
FIRST = '<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c><c r="B2"><v>13912340001</v></c></row>'


def workbook(path: Path, rows: str, *, before_rows: str = "", shared_strings: int = 0) -> Path:
    """A minimal workbook written part by part: its sheet's XML as given; ``shared_strings``: that many bytes of
    shared texts, written in blocks so that the test never holds them."""
    overrides = f'<Override PartName="/xl/workbook.xml" ContentType="{TYPES}.sheet.main+xml"/>'
    overrides += f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{TYPES}.worksheet+xml"/>'
    relations = f'<Relationship Id="rId1" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    if shared_strings:
        overrides += f'<Override PartName="/xl/sharedStrings.xml" ContentType="{TYPES}.sharedStrings+xml"/>'
        relations += f'<Relationship Id="rId2" Type="{DOC_RELS}/sharedStrings" Target="sharedStrings.xml"/>'
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>{overrides}'
        "</Types>",
        "_rels/.rels": f'<Relationships xmlns="{RELS}"><Relationship Id="rId1" '
        f'Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}"><sheets><sheet name="S" sheetId="1" '
        'r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{RELS}">{relations}</Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{MAIN}">{before_rows}<sheetData>{rows}</sheetData></worksheet>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        if shared_strings:
            block = b"<si><t>ab</t></si>" * 50_000
            with archive.open("xl/sharedStrings.xml", "w") as part:
                part.write(f'<sst xmlns="{MAIN}">'.encode())
                for _ in range(shared_strings // len(block) + 1):
                    part.write(block)
                part.write(b"</sst>")
    return path


def refused(path: Path) -> str:
    with pytest.raises(InvalidInput) as caught:
        read_roster_file(path)
    assert [e.loc for e in caught.value.errors] == ["file"]
    return caught.value.errors[0].msg


def test_shared_texts_that_unpack_past_the_bound_are_refused_before_they_are_read(tmp_path: Path) -> None:
    path = workbook(tmp_path / "bomb.xlsx", HEADER + FIRST, shared_strings=3 * MAX_PARTS_BYTES)
    assert path.stat().st_size < MAX_PARTS_BYTES // 100  # a small upload, 48 MB of shared texts once unpacked
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert "shared texts and styles unpack to more than 16 MB" in refused(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10


def test_a_row_numbered_past_excel_s_last_row_is_refused(tmp_path: Path) -> None:
    # openpyxl gives an empty row for each number skipped: with r="1000000000000" it would loop for days
    rows = HEADER + FIRST + '<row r="2000000"><c r="A2000000"><v>1</v></c></row>'
    assert "a row numbered '2000000'" in refused(workbook(tmp_path / "far.xlsx", rows))


def test_a_row_of_more_cells_than_excel_has_columns_is_refused(tmp_path: Path) -> None:
    # openpyxl holds a row whole: a megabyte of <c/> is a row of hundreds of megabytes
    rows = HEADER + FIRST + '<row r="3">' + "<c/>" * (EXCEL_COLUMNS + 1) + "</row>"
    assert f"more than {EXCEL_COLUMNS} cells" in refused(workbook(tmp_path / "wide.xlsx", rows))


def test_the_size_a_sheet_declares_does_not_pad_its_rows(tmp_path: Path) -> None:
    # read-only openpyxl pads every row to the declared size: 16,384 cells a row, over a million rows
    rows = HEADER + "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(2, 51))
    path = workbook(tmp_path / "padded.xlsx", rows, before_rows='<dimension ref="A1:XFD50"/>')
    with open_sheet(path) as sheet:
        assert sheet.header == ["name", "phone"]
        widths = {len(cells) for _, cells in sheet.rows}
    assert widths == {2}


async def upload(api: Api, path: Path) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("name", "名单")
    form.add_field("key", "phone")
    form.add_field("file", await asyncio.to_thread(path.read_bytes), filename=path.name)
    return await api.call("POST", "/api/v1/rosters", key="civ-issuer", data=form)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ('<row r="3"><c r="A3" t="s"><v>99</v></c></row>', "row 3 cannot be read (IndexError)"),  # no such text
        ('<row r="3"><c r="A3"><v>abc</v></c></row>', "row 3 cannot be read (ValueError)"),
        ('<row r="3"><c r="A3" t="d"><v>zzz</v></c></row>', "row 3 cannot be read (ValueError)"),
        ('<row r="3"><c r="AAAAA3"><v>1</v></c></row>', "row 3 cannot be read (ValueError)"),
    ],
)
async def test_a_sheet_openpyxl_cannot_read_is_a_422_naming_the_file(
    api: Api, tmp_path: Path, rows: str, message: str
) -> None:
    status, body = await upload(api, workbook(tmp_path / "bad.xlsx", HEADER + FIRST + rows))
    assert status == 422, body
    assert body["errors"][0]["loc"] == "file"
    assert message in body["errors"][0]["msg"]


@pytest.mark.parametrize("cell", ["ab\x00c", "\u202eabc", "a\x1b[31mb", "a\u200bb"])
async def test_a_roster_cell_with_a_control_or_invisible_character_is_refused_naming_it(
    api: Api, tmp_path: Path, cell: str
) -> None:
    # a cell goes into each recipient's message, the public publicity page and the village printout
    body = {"name": "名单", "key": "phone", "rows": [{"name": "x", "phone": "13912340001"}, {"name": cell}]}
    status, answer = await api.call("POST", "/api/v1/rosters", key="civ-issuer", json=body)
    assert status == 422, answer
    assert answer["errors"][0]["loc"] == "rows.2.name"
    path = tmp_path / "roster.csv"
    path.write_text(f"name,phone\nx,13912340001\n{cell},13912340002\n", encoding="utf-8")
    status, answer = await upload(api, path)
    assert status == 422, answer
    assert answer["errors"][0]["loc"] == "rows.2.name"
    assert "control or invisible character" in answer["errors"][0]["msg"]


@pytest.mark.parametrize(
    "data",
    [
        "name\tphone\r\nx\t13912340001\r\n".encode("utf-16"),  # Excel's "Unicode Text"
        "name,phone\n王秀英,13912340001\n".encode() + "张三,13912340002\n".encode("gbk"),  # two files pasted
    ],
)
def test_a_csv_in_neither_utf8_nor_gb18030_is_refused_saying_how_to_save_it(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    assert "save it from Excel as CSV UTF-8" in refused(path)


def test_a_sheet_larger_than_the_parts_bound_is_read(tmp_path: Path) -> None:
    # openpyxl opens every sheet while it loads the workbook, to read its declared size: only that start counts
    long_text = "长" * 150_000  # 450 kB of UTF-8 a row: openpyxl reads a cell whole
    rows = HEADER + "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>{long_text}</t></is></c></row>' for n in range(2, 42)
    )
    path = workbook(tmp_path / "long.xlsx", rows, before_rows='<dimension ref="A1:B41"/>')
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size > MAX_PARTS_BYTES
    with open_sheet(path) as sheet:
        assert sum(1 for _ in sheet.rows) == 40


def test_a_workbook_without_a_sheet_of_cells_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "empty.xlsx", HEADER + FIRST)
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["xl/workbook.xml"] = f'<workbook xmlns="{MAIN}"><sheets/></workbook>'.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    assert "no sheet of cells" in refused(path)
