"""A relief roster's rows: read from CSV or XLSX, and which column names the resident.

A roster is a table a department uploads: one row per recipient, a column that identifies the resident
(its ``key``: ``phone``, ``external_id`` or ``resident_id``) and any other columns (amount, item, date,
place...), kept as text exactly as the clerk wrote them. Reading reuses the subscriber importer's sheet
reader (``subscribers.sheets``: CSV in UTF-8 or GB18030, XLSX streamed), so Chinese headers and files saved by
Excel on a Chinese Windows just work. Excel dates become ``YYYY-MM-DD`` (with the time only when it is not
midnight); whole numbers lose Excel's ``.0``.

Rows are numbered as the API's report counts them: data rows from 1 (the spreadsheet's row minus the header).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.text import single_line
from subscribers.sheets import open_sheet

RosterKey = Literal["phone", "external_id", "resident_id"]
KEY_HEADERS: dict[str, tuple[str, ...]] = {
    "phone": ("phone", "手机号", "手机号码", "电话", "联系电话", "手机"),
    "external_id": ("external_id", "编号", "外部编号", "户编号"),
    "resident_id": ("resident_id", "居民编号", "居民id", "居民ID"),
}
NAME_HEADERS = ("name", "姓名", "户主姓名", "户主", "申请人", "收款人")
CSV_AND_XLSX = (".csv", ".txt", ".xlsx", ".xlsm")
MAX_ROWS = 200_000
MAX_COLUMNS = 60
MAX_CELL = 500
_MIDNIGHT = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T00:00:00")
_EXCEL_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}):[0-9]{2}")

Cells = dict[str, str]


@dataclass(frozen=True)
class RosterTable:
    columns: list[str]
    rows: list[tuple[int, Cells]]  # (data row number from 1, cells); blank rows are left out, numbers kept


def key_column(columns: Sequence[str], key: str) -> str:
    """The column that identifies the resident for ``key``; InvalidInput naming ``key`` when there is none."""
    for header in KEY_HEADERS[key]:
        if header in columns:
            return header
    names = ", ".join(KEY_HEADERS[key])
    raise InvalidInput(
        f"the roster has no {key} column",
        [FieldError("key", f"key {key} needs a column named one of: {names}")],
    )


def name_column(columns: Sequence[str]) -> str | None:
    return next((header for header in NAME_HEADERS if header in columns), None)


def clean_cell(value: object) -> str:
    """A cell as the roster keeps it: text, its runs of spaces one space, Excel dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    text = " ".join(text.split())
    if match := _MIDNIGHT.fullmatch(text):
        text = match.group(1)
    elif match := _EXCEL_TIME.fullmatch(text):
        text = f"{match.group(1)} {match.group(2)}"
    return text


def check_columns(columns: Sequence[str]) -> list[str]:
    """Headers cleaned; InvalidInput naming ``header`` for an empty, doubled or overlong one."""
    cleaned = [text_cell(column, "header") for column in columns]
    errors = []
    if not cleaned:
        errors.append(FieldError("header", "the first row must name the columns"))
    if len(cleaned) > MAX_COLUMNS:
        errors.append(FieldError("header", f"at most {MAX_COLUMNS} columns"))
    for position, column in enumerate(cleaned, start=1):
        if not column:
            errors.append(FieldError("header", f"column {position} has no name"))
        elif len(column) > 64:
            errors.append(FieldError("header", f"column {position} has a name longer than 64 characters"))
    doubled = sorted({column for column in cleaned if column and cleaned.count(column) > 1})
    if doubled:
        errors.append(FieldError("header", f"columns named twice: {', '.join(doubled)}"))
    if errors:
        raise InvalidInput("the roster's header is not usable", errors)
    return cleaned


def text_cell(value: object, where: str) -> str:
    """``clean_cell(value)`` in NFC; InvalidInput naming ``where`` (``header`` or ``rows.<data row>.<column>``,
    repeated in the message for the console's form) for a cell longer than MAX_CELL characters (refused, not
    cut: a cut cell would reach a resident as a cut text) or holding a control or invisible character (NUL,
    ESC, a bidirectional override, a zero-width space...), refused as in every text field
    (``notifier.domain.text``): a cell goes into messages, the public page and the printout."""
    text = unicodedata.normalize("NFC", clean_cell(value))
    if len(text) > MAX_CELL:
        raise _cell_error(where, f"longer than {MAX_CELL} characters", "the roster holds a cell too long to keep")
    if text.isprintable():  # the common case, at C speed: clean_cell made every space a plain one
        return text
    try:
        return single_line(text)
    except ValueError as exc:
        raise _cell_error(where, str(exc), "the roster holds a control or invisible character") from None


def _cell_error(where: str, message: str, detail: str) -> InvalidInput:
    _, number, column = [*where.split(".", 2), "", ""][:3]
    place = f"row {number}, column {column}: " if column else f"{where}: "
    return InvalidInput(detail, [FieldError(where, place + message)])


def table_from_rows(rows: Sequence[Mapping[str, object]]) -> RosterTable:
    """JSON rows (objects column -> value) as a table; its columns in the order they first appear."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(str(column) for column in row))
    columns = check_columns(list(seen))
    lookup = dict(zip(seen, columns, strict=True))
    table = [
        {lookup[str(k)]: text_cell(v, f"rows.{number}.{k}") for k, v in row.items()}
        for number, row in enumerate(rows, 1)
    ]
    return RosterTable(
        columns, [(number, {column: row.get(column, "") for column in columns}) for number, row in enumerate(table, 1)]
    )


def read_roster_file(path: Path) -> RosterTable:
    """The roster in a CSV or XLSX file (synchronous: run it in a thread); InvalidInput naming ``file`` or
    ``header`` when it cannot be read."""
    with open_sheet(path) as sheet:
        columns = check_columns([cell or "" for cell in _trim(sheet.header)])
        rows: list[tuple[int, Cells]] = []
        for number, cells in sheet.rows:
            if len(rows) >= MAX_ROWS:
                raise InvalidInput("the roster is too long", [FieldError("file", f"at most {MAX_ROWS} rows")])
            values = list(cells) + [None] * (len(columns) - len(cells))
            cleaned = {
                column: text_cell(value, f"rows.{number - 1}.{column}")
                for column, value in zip(columns, values, strict=False)
            }
            rows.append((number - 1, cleaned))  # the header is the spreadsheet's first row
    return RosterTable(columns, rows)


def _trim(header: Iterable[str | None]) -> list[str | None]:
    cells = list(header)
    while cells and cells[-1] is None:
        cells.pop()
    return cells
