"""Reading a roster row by row from CSV or XLSX, without loading the file into memory.

``open_sheet(path)`` yields a :class:`Sheet`: the header cells, an estimate of the data rows (for a
progress bar) and an iterator of ``(row number, cells)``, numbered as the spreadsheet shows them (the
header is row 1). Every cell comes back as stripped text or ``None``:

- XLSX is read with openpyxl in read-only mode; numbers come back as text without a trailing ``.0``
  (a phone number typed into Excel is a float: ``13812345678.0`` -> ``"13812345678"``), times as ``HH:MM``;
  a data row's cells stop at the header's last named column. A workbook that unpacks beyond the bounds below,
  breaks Excel's own or holds a cell openpyxl cannot read raises InvalidInput naming ``file``.
- CSV is UTF-8 with or without a byte-order mark; a file that is not valid UTF-8 is read as GB18030, which
  is how Excel on a Chinese Windows saves "CSV" (GBK is a subset of GB18030).

Blank rows are skipped; their numbers are not reused, so row numbers always match the spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast
from xml.parsers import expat

from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.text import ascii_digits

Cells = list[str | None]
CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Sheet:
    header: Cells
    total: int | None  # data rows, blank ones included; None when unknown
    rows: Iterator[tuple[int, Cells]]
    encoding: str | None = None  # CSV only


@contextmanager
def open_sheet(path: Path) -> Iterator[Sheet]:
    """Open a CSV or XLSX roster; raise InvalidInput when it cannot be read or has no header."""
    if not path.is_file():
        raise InvalidInput(f"no file {path.name}", [FieldError("file", "file not found")])
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        with _open_csv(path) as sheet:
            yield sheet
    elif suffix in XLSX_SUFFIXES:
        with _open_xlsx(path) as sheet:
            yield sheet
    else:
        raise InvalidInput(
            f"cannot read {path.name}",
            [FieldError("file", "use a .csv or .xlsx file (Excel: Save As > Excel Workbook or CSV UTF-8)")],
        )


def cell_text(value: Any) -> str | None:
    """A cell as stripped text (None when empty); whole numbers lose Excel's ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, dt.datetime):
        text = value.isoformat()
    elif isinstance(value, dt.time):
        text = value.strftime("%H:%M")
    else:
        text = str(value)
    text = text.strip()
    return text or None


def _blank(cells: Cells) -> bool:
    return all(c is None for c in cells)


def _split_header(numbered: Iterator[tuple[int, Cells]], name: str) -> Cells:
    for _, cells in numbered:
        if not _blank(cells):
            return cells
    raise InvalidInput(f"{name} is empty", [FieldError("header", "the first row must name the columns")])


def _data_rows(numbered: Iterator[tuple[int, Cells]]) -> Iterator[tuple[int, Cells]]:
    return ((number, cells) for number, cells in numbered if not _blank(cells))


# --- CSV -----------------------------------------------------------------------------------------


def detect_encoding(path: Path, chunk: int = 1 << 16) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8 (BOM or not), else ``gb18030``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as file:
            while block := file.read(chunk):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _csv_records(path: Path, encoding: str) -> Generator[tuple[int, Cells], None, None]:
    with path.open(encoding=encoding, errors="strict", newline="") as file:
        for number, record in enumerate(csv.reader(file), start=1):
            yield number, [cell_text(c) for c in record]


@contextmanager
def _open_csv(path: Path) -> Iterator[Sheet]:
    encoding = detect_encoding(path)
    try:
        total = sum(1 for _ in _csv_records(path, encoding)) - 1
        numbered = _csv_records(path, encoding)
        header = _split_header(numbered, path.name)
    except UnicodeDecodeError:  # neither UTF-8 nor GB18030: UTF-16 (Excel's "Unicode Text"), two mixed...
        message = "the text is not in UTF-8 or GB18030/GBK throughout: save it from Excel as CSV UTF-8"
        raise InvalidInput(f"cannot read {path.name}", [FieldError("file", message)]) from None
    except csv.Error as exc:
        raise InvalidInput(f"cannot read {path.name}", [FieldError("file", f"not a CSV file: {exc}")]) from None
    try:
        yield Sheet(header=header, total=max(total, 0), rows=_data_rows(numbered), encoding=encoding)
    finally:
        numbered.close()


# --- XLSX ----------------------------------------------------------------------------------------

# An XLSX file is a zip: a small upload can unpack to gigabytes. Loading a workbook, openpyxl reads every part
# it needs whole (shared texts, styles, the workbook...); then it reads the sheet's rows one at a time, each row
# whole, padded up to its last cell's column and preceded by an empty row for every row number it skips. So the
# parts read while loading may unpack to MAX_PARTS_BYTES in all, the sheet streamed after to MAX_SHEET_BYTES
# (zipfile holds each part to the size the zip declares), and the sheet is scanned once, streamed, for Excel's
# own bounds (row numbers, cells in a row) before openpyxl builds rows from it. A hostile file within these
# bounds costs about 400 MB and 8 s (16 MB of empty elements in the styles); a real one far less.
MAX_PARTS_BYTES = 16 << 20  # about 400,000 distinct texts in the shared strings
MAX_SHEET_BYTES = 256 << 20
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384


def _refuse(path: Path, message: str) -> InvalidInput:
    return InvalidInput(f"cannot read {path.name}", [FieldError("file", message)])


class _Workbook(zipfile.ZipFile):
    """The workbook's zip, refusing to unpack more than the bounds above. While loading, a part is counted whole
    when opened (zipfile unpacks no more than it declares), except a part in xl/worksheets/, counted as it is read
    (openpyxl reads the start of each sheet, for its size); then a part opened must declare MAX_SHEET_BYTES at
    most."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.path = path
        self.loading = True  # then the sheet is streamed
        self.unpacked = 0

    def open(self, name: str | zipfile.ZipInfo, mode: Literal["r", "w"] = "r", pwd: bytes | None = None,
             *, force_zip64: bool = False) -> IO[bytes]:  # fmt: skip
        info = name if isinstance(name, zipfile.ZipInfo) else self.NameToInfo.get(name)
        size = info.file_size if info is not None and mode == "r" else 0
        sheet = info is not None and info.filename.startswith("xl/worksheets/")
        if self.loading and not sheet:
            self.count(size)
        elif not self.loading and size > MAX_SHEET_BYTES:
            raise _refuse(self.path, f"its sheet unpacks to more than {MAX_SHEET_BYTES >> 20} MB: save it as CSV, "
                          "or split it")  # fmt: skip
        part = super().open(name, mode, pwd, force_zip64=force_zip64)
        return cast(IO[bytes], _Counted(part, self)) if self.loading and sheet and size else part

    def count(self, size: int) -> None:
        self.unpacked += size
        if self.unpacked > MAX_PARTS_BYTES:
            raise _refuse(self.path, f"its shared texts and styles unpack to more than {MAX_PARTS_BYTES >> 20} MB: "
                          "save only the table, or save it as CSV")  # fmt: skip


class _Counted(io.RawIOBase):
    """A sheet being read while the workbook loads (openpyxl looks for its size): every byte counted
    (``_Workbook.count``) as it is read."""

    def __init__(self, part: IO[bytes], workbook: _Workbook) -> None:
        super().__init__()
        self.part = part
        self.workbook = workbook

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # read whole: in blocks, each counted before the next is unpacked
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        data = self.part.read(size)
        self.workbook.count(len(data))
        return data

    def close(self) -> None:
        self.part.close()
        super().close()


def _scan_sheet(path: Path, source: IO[bytes]) -> None:
    """Stream the worksheet's XML once: refuse a DTD, more rows than Excel has or a row number beyond its last,
    and a row of more cells than Excel has columns, before openpyxl builds rows from it."""
    parser = expat.ParserCreate(namespace_separator=" ")
    rows = cells = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal rows, cells
        local = name.rpartition(" ")[2]
        if local == "row":
            rows, cells = rows + 1, 0
            number = attrs.get("r", "1")
            if not ascii_digits(number) or not 0 < int(number) <= EXCEL_ROWS:
                raise _refuse(path, f"a row numbered {number[:20]!r}: Excel numbers rows 1 to {EXCEL_ROWS}")
            if rows > EXCEL_ROWS:
                raise _refuse(path, f"more than {EXCEL_ROWS} rows, the most Excel has")
        elif local == "c":
            cells += 1
            if cells > EXCEL_COLUMNS:
                raise _refuse(path, f"a row with more than {EXCEL_COLUMNS} cells, the most Excel has")

    def doctype(*_: object) -> None:
        raise _refuse(path, "the sheet declares a DTD, which Excel never writes")

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = doctype
    try:
        while block := source.read(1 << 16):
            parser.Parse(block, False)
        parser.Parse(b"", True)
    except (expat.ExpatError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _refuse(path, f"the sheet cannot be read ({type(exc).__name__})") from None


def _sheet_rows(
    path: Path, sheet: Any, min_row: int = 1, max_col: int | None = None
) -> Generator[tuple[int, Cells], None, None]:
    """The sheet's rows from ``min_row``, each cut at ``max_col``; a cell openpyxl cannot read (a shared text
    that is not there, a number that is not one) refuses the file, naming its row."""
    number = min_row - 1
    try:
        for number, values in enumerate(
            sheet.iter_rows(min_row=min_row, max_col=max_col, values_only=True), start=min_row
        ):
            yield number, [cell_text(v) for v in values]
    except InvalidInput:
        raise
    except Exception as exc:  # openpyxl raises ValueError, IndexError, KeyError... for a malformed cell
        raise _refuse(path, f"row {number + 1} cannot be read ({type(exc).__name__})") from None


@contextmanager
def _open_xlsx(path: Path) -> Iterator[Sheet]:
    # imported here: only XLSX imports pay for it
    from openpyxl.reader.excel import ExcelReader  # type: ignore[import-untyped,unused-ignore]

    try:
        archive = _Workbook(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(path, f"not an Excel workbook ({type(exc).__name__})") from None
    try:
        # openpyxl's load_workbook(path, read_only=True, data_only=True), reading through the bounded zip
        reader = ExcelReader(path, read_only=True, data_only=True)
        reader.archive.close()
        reader.archive = archive
        reader.read()
        workbook = reader.wb
    except InvalidInput:
        archive.close()
        raise
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for a bad file
        archive.close()
        raise _refuse(path, f"not an Excel workbook ({type(exc).__name__})") from None
    archive.loading = False
    try:
        sheet = workbook.active
        if not hasattr(sheet, "reset_dimensions"):  # no sheet active, or a chart sheet: the first sheet of cells
            sheet = next(iter(workbook.worksheets), None)
        if sheet is None:
            raise _refuse(path, "the workbook has no sheet of cells")
        max_row = getattr(sheet, "max_row", None)
        total = max_row - 1 if isinstance(max_row, int) and max_row > 1 else None
        with sheet._get_source() as source:
            _scan_sheet(path, source)
        sheet.reset_dimensions()  # the size the sheet declares would pad every row to it
        top = _sheet_rows(path, sheet)
        header_row, header = next(((n, cells) for n, cells in top if not _blank(cells)), (0, []))
        top.close()
        if not header_row:
            raise InvalidInput(f"{path.name} is empty", [FieldError("header", "the first row must name the columns")])
        width = max((i + 1 for i, cell in enumerate(header) if cell is not None), default=1)
        numbered = _sheet_rows(path, sheet, header_row + 1, width)
        yield Sheet(header=header[:width], total=total, rows=_data_rows(numbered))
    finally:
        workbook.close()
