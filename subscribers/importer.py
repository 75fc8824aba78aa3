"""Bulk import of residents from a CSV or XLSX roster, with a per-row error report.

    with rich_progress() as progress:
        result = await import_file(store, Path("roster.xlsx"), actor="cli", report_path=Path("errors.csv"),
                                   progress=progress)

The steps, in order:

1. The header row is mapped to columns (``subscribers.rows``: English names or the Chinese a civil-affairs
   clerk writes). Unknown, doubled or missing required columns stop the import before any row is read:
   ``InvalidInput`` lists them.
2. Rows are streamed (``subscribers.sheets``; never the whole file in memory), the file opened and its rows
   read ``BATCH_ROWS`` at a time in a thread (the event loop of the web process, where the console imports,
   never waits on the parse), each validated with ``SubscriberIn`` and against the catalog (areas, groups,
   topics) loaded once.
3. Valid rows are written ``BATCH_ROWS`` per transaction: duplicates (phone, external_id) are looked up
   inside the transaction, so a file that repeats a resident reports the second row; then one insert per
   row, one batched insert each for groups and topics, one read of the new residents and one batched
   insert of their audit entries (each with the detail ``Store.create_subscriber`` records: the fields
   as stored, masked by the log). Should the database refuse
   anything in a batch (another writer took a phone number meanwhile), the batch is rolled back and
   replayed one row per transaction through ``Store.create_subscriber``, which reports that row alone.
   A bad row never changes anything and never stops the import.
4. Each failed row becomes one line per field in the report (CSV, UTF-8 with BOM so that Excel opens it):
   ``row`` (as the spreadsheet numbers it, header = 1), ``external_id``, ``field``, ``message``. Messages
   never repeat a name or contact point; logs carry counts only.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

from notifier.domain.errors import FieldError, InvalidInput, NotifierError
from notifier.domain.models import PersonalDataScope, SubscriberIn
from notifier.domain.spreadsheet import csv_row
from notifier.store import Store
from notifier.store.common import now_iso
from notifier.store.subscribers import creation_detail, subscriber_row
from subscribers.progress import rich_progress
from subscribers.rows import PERSONAL_COLUMNS, Catalog, Row, RowError, map_header, parse_row, scrub
from subscribers.sheet_slots import sheet_slot
from subscribers.sheets import Cells, open_sheet

__all__ = ["BATCH_ROWS", "ImportResult", "RowError", "import_file", "rich_progress"]

logger = logging.getLogger(__name__)

BATCH_ROWS = 500
KEPT_ERRORS = 100  # errors kept in ImportResult.errors; the report file has them all
REPORT_COLUMNS = ("row", "external_id", "field", "message")

T = TypeVar("T")
Progress = Callable[[int, int], None]
Existing = Literal["error", "skip"]
Outcome = Literal["imported", "existing"] | list[RowError]


@dataclass
class ImportResult:
    total: int = 0  # data rows read (blank rows are not counted)
    imported: int = 0
    failed: int = 0
    existing: int = 0  # rows skipped because their external_id is already stored (existing="skip")
    duplicates: int = 0  # rows refused because another resident has their phone number or external_id
    duplicates_disclosed: int = 0  # of them, those whose report names that resident (``_taken``)
    report_path: Path | None = None
    errors: list[RowError] = field(default_factory=list)  # the first KEPT_ERRORS errors
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class DuplicateError(RowError):
    """A row refused because another resident has its phone number or external_id; ``disclosed``: the report
    names that resident (the department reads them)."""

    disclosed: bool = False


async def import_file(
    store: Store,
    path: Path,
    *,
    actor: str,
    report_path: Path | None,
    progress: Progress | None = None,
    existing: Existing = "error",
    scope: PersonalDataScope | None = None,
) -> ImportResult:
    """Import every valid row of a CSV or XLSX roster; see the module docstring.

    ``progress(done, total)`` is called after every batch (``total`` is 0 while unknown).
    ``existing="skip"`` counts a row whose external_id is already stored as existing instead of as an
    error (the demo loader uses it to be idempotent). With a department's ``scope`` (the console), a row
    naming a group the department does not work with, or a topic it does not issue on, is refused, as the API
    refuses it. Raises InvalidInput only for a file that cannot be read or whose header is wrong; row errors go
    to the report. Do not call it inside a transaction. The file is read once one of the process's spreadsheet
    slots is free (``subscribers.sheet_slots``).
    """
    async with sheet_slot():
        return await _import(store, Path(path), actor, report_path, progress, existing, scope)


async def _import(
    store: Store,
    path: Path,
    actor: str,
    report_path: Path | None,
    progress: Progress | None,
    existing: Existing,
    scope: PersonalDataScope | None,
) -> ImportResult:
    started = time.perf_counter()
    result = ImportResult(report_path=report_path)
    with ExitStack() as stack:
        # the file is opened and read in a thread, a batch at a time: in the web process (the console's import)
        # parsing a workbook would otherwise hold the event loop, every request waiting on it
        opened = open_sheet(path)
        sheet = await _off_loop(opened.__enter__)
        stack.push(opened.__exit__)
        columns = map_header(sheet.header)
        catalog = await Catalog.load(store)
        report = _Report(stack, report_path, result)
        consent = f"import:{path.name}"[:200]
        batch: list[Row] = []
        async for number, cells in _read_rows(sheet.rows):
            result.total += 1
            row = parse_row(number, cells, columns, catalog, consent)
            if scope is not None and row.data is not None:
                row.errors += outside_scope(row, row.data, scope)
            if row.errors:
                report.add(row)
            else:
                batch.append(row)
            if len(batch) + report.pending >= BATCH_ROWS:
                await _flush(store, batch, actor, existing, report, scope)
                batch = []
                if progress:
                    progress(result.total, max(sheet.total or 0, result.total))
        await _flush(store, batch, actor, existing, report, scope)
        if progress:
            progress(result.total, result.total)
    result.seconds = time.perf_counter() - started
    counts = {"rows": result.total, "imported": result.imported, "failed": result.failed}
    # that a value is registered cannot be hidden from someone registering it: as the API's 409s
    # (subscriber.duplicate), the refusals are in the log, here counted per import
    duplicates = {"duplicates": result.duplicates, "disclosed": result.duplicates_disclosed}
    await store.audit(actor, "subscriber.import", "file", path.name,
                      {**counts, "existing": result.existing, **duplicates})  # fmt: skip
    logger.info(
        "import of %s: %d rows, %d imported, %d failed, %d existing, %.1f s",
        path.name,
        result.total,
        result.imported,
        result.failed,
        result.existing,
        result.seconds,
    )
    return result


async def _read_rows(rows: Iterator[tuple[int, Cells]]) -> AsyncIterator[tuple[int, Cells]]:
    """The sheet's rows, read BATCH_ROWS at a time in a thread."""
    while chunk := await _off_loop(lambda: list(islice(rows, BATCH_ROWS))):
        for row in chunk:
            yield row


async def _off_loop(call: Callable[[], T]) -> T:
    """``call()`` in a thread. Cancelled, it waits for the thread to end (a thread cannot be stopped) before it
    raises, so that the sheet is not closed under the thread still reading it."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class _Report:
    """Counts failures and keeps the first few; writes every one to the report file in row order."""

    def __init__(self, stack: ExitStack, path: Path | None, result: ImportResult) -> None:
        self.result = result
        self.writer: Any = None
        self._pending: list[RowError] = []  # errors of the rows since the last flush
        self.pending = 0  # rows with errors since the last flush
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            file = stack.enter_context(path.open("w", encoding="utf-8-sig", newline=""))
            self.writer = csv.writer(file)
            self.writer.writerow(REPORT_COLUMNS)

    def add(self, row: Row) -> None:
        self.result.failed += 1
        self.pending += 1
        self._pending += row.errors

    def count(self, batch: list[Row], outcomes: list[Outcome]) -> None:
        """Record a written batch's outcomes, then write the errors since the last flush."""
        for row, outcome in zip(batch, outcomes, strict=True):
            if outcome == "imported":
                self.result.imported += 1
            elif outcome == "existing":
                self.result.existing += 1
            else:
                row.errors = list(outcome)
                self.add(row)
                duplicate = next((e for e in outcome if isinstance(e, DuplicateError)), None)
                if duplicate is not None:
                    self.result.duplicates += 1
                    self.result.duplicates_disclosed += duplicate.disclosed
        self._pending.sort(key=lambda e: e.row)
        room = max(KEPT_ERRORS - len(self.result.errors), 0)
        self.result.errors += self._pending[:room]
        if self.writer is not None:
            self.writer.writerows(csv_row((e.row, e.external_id, e.field, e.message)) for e in self._pending)
        self._pending, self.pending = [], 0


# --- writing ---------------------------------------------------------------------------------------


async def _flush(
    store: Store, batch: list[Row], actor: str, existing: Existing, report: _Report, scope: PersonalDataScope | None
) -> None:
    if not batch:
        report.count([], [])
        return
    try:
        async with store.db.transaction():
            outcomes = await _write_batch(store, batch, actor, existing, scope)
    except Exception as exc:  # rolled back: replay row by row, each row its own transaction
        logger.info("a batch of %d rows was rolled back (%s); replaying row by row", len(batch), type(exc).__name__)
        outcomes = [await _write_row(store, row, actor, existing, scope) for row in batch]
    report.count(batch, outcomes)


async def _write_batch(
    store: Store, batch: list[Row], actor: str, existing: Existing, scope: PersonalDataScope | None
) -> list[Outcome]:
    """Insert the batch's new residents with as few round trips as the named queries allow."""
    outcomes: list[Outcome] = []
    groups: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    created: list[int] = []
    now = now_iso()
    for row in batch:
        data = row.data
        assert data is not None
        duplicate = await _duplicate(store, row, data, existing, scope)
        if duplicate is not None:
            outcomes.append(duplicate)
            continue
        subscriber_id = await store.db.fetch_value("insert_subscriber", subscriber_row(data, now))
        groups += [{"id": subscriber_id, "code": code} for code in data.groups]
        topics += [{"id": subscriber_id, "code": code} for code in data.topics]
        created.append(subscriber_id)
        outcomes.append("imported")
    await store.db.execute_many("add_subscriber_group", groups)
    await store.db.execute_many("add_subscriber_topic", topics)
    # audited as Store.create_subscriber audits one resident: what was stored, read back in one go
    stored = await store.stored_subscribers(created) if created else []
    await store.audit_many(actor, [("subscriber.create", "subscriber", s.id, creation_detail(s)) for s in stored])
    return outcomes


def outside_scope(row: Row, data: SubscriberIn, scope: PersonalDataScope) -> list[RowError]:
    """A department imports residents into its own groups and topics only, as the API creates them."""
    refusals = [("groups", scope.groups_refused(data.groups)), ("topics", scope.topics_refused(data.topics))]
    return [RowError(row.number, row.external_id, field, refusal) for field, refusal in refusals if refusal]


async def _write_row(
    store: Store, row: Row, actor: str, existing: Existing, scope: PersonalDataScope | None
) -> Outcome:
    """The careful path: one row in its own transaction through ``Store.create_subscriber``."""
    data = row.data
    assert data is not None
    try:
        async with store.db.transaction():
            duplicate = await _duplicate(store, row, data, existing, scope)
            if duplicate is not None:
                return duplicate
            await store.create_subscriber(data, actor, scope)
    except NotifierError as exc:
        return _store_errors(row, data, exc)
    return "imported"


async def _duplicate(
    store: Store, row: Row, data: SubscriberIn, existing: Existing, scope: PersonalDataScope | None
) -> Outcome | None:
    """'existing' or the row's error when its external_id or phone is taken; None when it is new."""
    if data.external_id:
        other = await store.db.fetch_value("find_subscriber_by_external_id", {"external_id": data.external_id})
        if other is not None:
            if existing == "skip":
                return "existing"
            return [await _taken(store, row, int(other), "external_id", scope)]
    if data.phone and (other := await store.find_subscriber_by_phone(data.phone)) is not None:
        return [await _taken(store, row, other, "phone", scope)]
    return None


async def _taken(store: Store, row: Row, other: int, column: str, scope: PersonalDataScope | None) -> DuplicateError:
    """The report names the resident who has the value only to a department that reads them, as the API's 409
    does; that the value is registered cannot be hidden from someone registering it."""
    what = "phone number" if column == "phone" else column
    if scope is None or other in await store.readable_subscriber_ids([other], scope):
        return DuplicateError(row.number, row.external_id, column, f"resident {other} has this {what}", True)
    message = f"a resident outside the department's residents has this {what}"
    return DuplicateError(row.number, row.external_id, column, message, False)


def _store_errors(row: Row, data: SubscriberIn, exc: NotifierError) -> list[RowError]:
    details = exc.errors if isinstance(exc, InvalidInput) and exc.errors else [FieldError("row", exc.detail)]
    personal = data.model_dump(include=set(PERSONAL_COLUMNS))
    return [RowError(row.number, row.external_id, e.loc, scrub(e.msg, personal)) for e in details]
