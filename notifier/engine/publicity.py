"""Publicity lists (公示): the table a notice publishes, masked, for one village's board or for the public page.

The table's columns are the notice's ``publicity.columns``: roster columns, and ``name`` / ``area`` for the
matched resident's name and village when the roster has no column of that name. Every cell is masked here
(``notifier.domain.masking``), before the table is handed to a channel or a page: nothing unmasked leaves the
service. A village's printout lists only the rows whose resident lives in that village.
"""

from __future__ import annotations

from channels.bulletin_render import PublicityTable
from notifier.domain.masking import mask_row
from notifier.domain.models import PublicityIn
from notifier.store import Store

RESIDENT_COLUMNS = {"name": "姓名", "area": "村（社区）"}


def header_of(column: str, roster_columns: set[str]) -> str:
    return column if column in roster_columns else RESIDENT_COLUMNS.get(column, column)


async def publicity_table(store: Store, publicity: PublicityIn, area: str | None) -> PublicityTable:
    """The masked table of ``area`` (a village or town code), or of every area when None."""
    rows = await store.publicity_rows(publicity.roster, area)
    roster_columns = {column for row in rows for column in row["cells"]}
    headers = [header_of(column, roster_columns) for column in publicity.columns]
    stricter = {header_of(c, roster_columns): mode for c, mode in publicity.masks.items()}
    masked = []
    for row in rows:
        cells = dict(row["cells"])
        if "name" not in cells:
            cells["name"] = row["resident_name"] or ""
        if "area" not in cells:
            cells["area"] = row["area_name"] or ""
        named = {header_of(column, roster_columns): cells.get(column, "") for column in publicity.columns}
        masked.append(tuple(mask_row(headers, named, stricter)))
    return PublicityTable(
        headers=tuple(headers),
        rows=tuple(masked),
        period_from=publicity.from_date.isoformat(),
        period_until=publicity.until.isoformat(),
        complaint_phone=publicity.complaint_phone,
    )
