"""Reading a roster row by row from CSV or XLSX, without loading the file into memory.

``open_sheet(path)`` yields a :class:`Sheet`: the header cells, an estimate of the data rows (for a
progress bar) and an iterator of ``(row number, cells)``, numbered as the spreadsheet shows them (the
header is row 1). Every cell comes back as stripped text or ``None``:

- XLSX is read with openpyxl in read-only mode; numbers come back as text without a trailing ``.0``
  (a phone number typed into Excel is a float: ``13812345678.0`` -> ``"13812345678"``), times as ``HH:MM``.
- CSV is UTF-8 with or without a byte-order mark; a file that is not valid UTF-8 is read as GB18030, which
  is how Excel on a Chinese Windows saves "CSV" (GBK is a subset of GB18030).

Blank rows are skipped; their numbers are not reused, so row numbers always match the spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier.domain.errors import FieldError, InvalidInput

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
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {path.name}", [FieldError("file", f"not a CSV file: {exc}")]) from None
    try:
        yield Sheet(header=header, total=max(total, 0), rows=_data_rows(numbered), encoding=encoding)
    finally:
        numbered.close()


# --- XLSX ----------------------------------------------------------------------------------------


@contextmanager
def _open_xlsx(path: Path) -> Iterator[Sheet]:
    # imported here: only XLSX imports pay for it
    from openpyxl import load_workbook  # type: ignore[import-untyped,unused-ignore]

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for a bad file
        raise InvalidInput(
            f"cannot read {path.name}", [FieldError("file", f"not an Excel workbook ({type(exc).__name__})")]
        ) from None
    try:
        sheet = workbook.active if workbook.active is not None else workbook.worksheets[0]
        numbered = (
            (number, [cell_text(v) for v in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        )
        header = _split_header(numbered, path.name)
        max_row = getattr(sheet, "max_row", None)
        total = max_row - 1 if isinstance(max_row, int) and max_row > 1 else None
        yield Sheet(header=header, total=total, rows=_data_rows(numbered))
    finally:
        workbook.close()
