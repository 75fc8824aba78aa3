"""Cells of the CSV files staff open in a spreadsheet: text that would run as a formula is written as text.

A spreadsheet opening a CSV file runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: ``=HYPERLINK("http://...", "点击")`` or a DDE call in a resident's name, typed
on the public subscription page, would run on a clerk's machine when the residents export is opened (CSV
injection, OWASP). Such a cell gets a leading apostrophe, which the spreadsheet shows and does not run.
Numbers keep their sign (a phone number ``+8613812345678``, an amount ``-50``): they run as nothing but a number.

Not applied to the audit log's CSV export, which carries the stored values for the chain's hash check
(docs/audit.md) and whose cells are codes, times, hashes, key and staff names and JSON objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9][0-9 .,]*")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: None as empty, text that a spreadsheet would run as a formula with a leading
    apostrophe, anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]
