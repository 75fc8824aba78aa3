"""``notifier rosters import FILE --department CODE --key phone|external_id|resident_id``: a relief roster from
the shell, with the per-row report the API gives (the file is read in a thread: openpyxl parses on the CPU)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from notifier.domain.errors import FieldError, InvalidInput
from notifier.store import Store
from subscribers.roster_rows import read_roster_file


async def import_roster(
    store: Store, path: Path, *, department: str, key: str, name: str | None, direct: bool, actor: str
) -> dict[str, Any]:
    """Upload the roster in ``path`` for ``department``; its report (``Store.roster_report``)."""
    await store.get_department(department)  # NotFound for an unknown code, before the file is read
    table = await asyncio.to_thread(read_roster_file, path)
    if not table.rows:
        raise InvalidInput("the roster has no rows", [FieldError("file", "at least one data row")])
    roster_id = await store.create_roster(
        department=department, name=name or path.stem, key=key, table=table, direct=direct, actor=actor
    )
    return await store.roster_report(roster_id)


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as the command prints it: a summary, then one line per row that reaches nobody."""
    lines = [
        f"roster {report['id']}: rows {report['rows']}, matched {report['matched']} "
        f"(direct {report['direct']}), unmatched {len(report['unmatched'])}"
    ]
    lines += [f"row {row['row']}: {row['reason']}" for row in report["unmatched"]]
    return lines
