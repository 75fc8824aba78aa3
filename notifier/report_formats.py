"""The reports as tables: CSV (one table, a ``scope`` column first) and XLSX (one sheet per table).

Building an XLSX workbook is CPU work: call :func:`to_xlsx` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped,unused-ignore]

from notifier.domain.spreadsheet import csv_cell
from notifier.domain.text import xml_chars
from notifier.reports import AssessmentReport, Figures, ReachReport

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA = "text/csv"
FIGURES = (
    "targeted",
    "reached",
    "sent_to",
    "reach_rate",
    "sent_rate",
    "sent",
    "delivered",
    "confirmed",
    "failed",
    "failed_by_reason",
    "fallback",
    "skipped",
    "pending",
    "printouts",
)
NOTICE_EXTRAS = ("severity", "state", "released_at", "minutes_to_50_percent", "minutes_to_90_percent")
Table = tuple[list[str], list[list[Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, dict):  # failed_by_reason
        return "; ".join(f"{reason}={n}" for reason, n in value.items())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _figure_row(key: str, name: str | None, figures: Figures, extras: Sequence[str] = ()) -> list[Any]:
    values = [getattr(figures, field) for field in (*FIGURES, *extras)]
    return [key, name, *(_cell(value) for value in values)]


def reach_tables(report: ReachReport) -> dict[str, Table]:
    header = ["key", "name", *FIGURES]
    return {
        "total": (header, [_figure_row("total", None, report.total)]),
        "notices": (
            [*header, *NOTICE_EXTRAS, "department"],
            [[*_figure_row(str(n.notice_id), n.title, n, NOTICE_EXTRAS), n.department] for n in report.notices],
        ),
        "departments": (
            [*header, "notices"],
            [[*_figure_row(d.department, None, d), d.notices] for d in report.departments],
        ),
        "channels": (header, [_figure_row(c.channel, None, c) for c in report.channels]),
        "towns": (header, [_figure_row(t.town, t.name, t) for t in report.towns]),
        "villages": (["key", "name", "printouts"], [[v.village, v.name, v.printouts] for v in report.villages]),
    }


def assessment_tables(report: AssessmentReport) -> dict[str, Table]:
    fields = list(type(report.departments[0]).model_fields) if report.departments else ["department"]
    rows = [[_cell(getattr(row, field)) for field in fields] for row in report.departments]
    return {"departments": (fields, rows)}


def to_csv(tables: dict[str, Table]) -> str:
    """One CSV table: ``scope`` (the table's name) first, then the widest header of all tables."""
    columns: list[str] = []
    for header, _ in tables.values():
        columns += [name for name in header if name not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["scope", *columns])
    for scope, (header, rows) in tables.items():
        for row in rows:
            values = dict(zip(header, row, strict=True))
            writer.writerow([scope, *(csv_cell(values.get(name)) for name in columns)])
    return buffer.getvalue()


def to_xlsx(tables: dict[str, Table]) -> bytes:
    """One sheet per table, in a write-only workbook (CPU work: run it in a thread)."""
    workbook = Workbook(write_only=True)
    for name, (header, rows) in tables.items():
        sheet = workbook.create_sheet(title=name)
        sheet.append(header)
        for row in rows:
            sheet.append([_xlsx_value(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: Any) -> Any:
    """A cell as a workbook may hold it: text never a formula, and without the characters XML cannot hold (a
    notice title may keep U+FFFE, which made the whole workbook unreadable)."""
    if not isinstance(value, str):
        return value
    value = xml_chars(value)
    return "'" + value if value.startswith("=") else value  # never a formula
