"""Residents in the console: search, one resident's record, import from CSV or XLSX, export.

    GET  /console/residents                         search by name, phone (its last digits), area, group, topic
    GET  /console/residents/export.csv              the search's residents as CSV (UTF-8 with BOM, for Excel)
    GET  /console/residents/{id}                    contact points, groups, topics, consent and its history,
                                                    the department's messages the resident received
    POST /console/residents/import                  upload a roster; the import runs in the background
    GET  /console/residents/import/{job}            its progress (the page reloads itself), then its counts
    GET  /console/residents/import/{job}/report.csv the per-row error report

The rules are the API's: the staff member's ``personal_data_scope`` (their department's topics and groups;
everyone for an admin) limits what is found, shown and exported, and group memberships outside it are not
shown; every search, read and export is written to the audit log (counts and filters, never the data). The
import is ``subscribers.importer.import_file``, the command line's, with the department's scope: a row naming
a group the department does not work with is refused in the report. An import job is seen only by whoever
started it, and is forgotten (with its files) after ``KEPT_JOBS`` newer ones. When the service stops, it waits
for the imports still running to finish before it closes the database (``imports_ctx``), until ``[engine]
lease_seconds`` after the shutdown began (the time the engine gives its workers' batches, which stop meanwhile):
an import stuck longer (on a database lock, say) is cancelled, its batch in hand rolled back, and its job says
it was interrupted, on its page and in the log, never that it is done.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from notifier.api.keys import SETTINGS
from notifier.api.routing import path_int
from notifier.console.compose_form import area_tree
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.contacts import area_level
from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, InvalidInput, NotFound
from notifier.domain.models import PersonalDataScope, Subscriber
from notifier.domain.spreadsheet import csv_row
from notifier.policy import personal_data_scope
from notifier.store import Store
from subscribers.importer import ImportResult, import_file
from subscribers.sheets import CSV_SUFFIXES, XLSX_SUFFIXES

log = logging.getLogger(__name__)

RESIDENTS_PATH = "/console/residents"
IMPORTERS = (Role.ISSUER,)
PAGE_ROWS = 50
EXPORT_ROWS = 100_000
KEPT_JOBS = 20
EXPORT_COLUMNS = ("id", "external_id", "name", "phone", "email", "area_code", "groups", "topics", "channels",
                  "language", "consent_source", "consent_at", "consent_withdrawn_at")  # fmt: skip


@dataclass
class ImportJob:
    id: str
    staff_id: int
    file_name: str
    folder: Path
    done: int = 0
    total: int = 0
    result: ImportResult | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def report(self) -> Path:
        return self.folder / "report.csv"

    def interrupt(self) -> None:
        """Say that the import stopped before its end: the batches written so far stay, the one in hand is rolled
        back; no result (counts, report) is claimed."""
        self.error = (
            f"the import was interrupted after {self.done} rows; the rows before were imported, the rows after "
            "them may not all be"
        )


@dataclass
class ImportJobs:
    """The console's import jobs of this process, newest last."""

    jobs: dict[str, ImportJob] = field(default_factory=dict)
    stopping_at: float | None = None  # the event loop's time when the service's shutdown began

    def add(self, job: ImportJob) -> list[Path]:
        """Keep ``job``, forgetting the oldest finished jobs past ``KEPT_JOBS``: their folders, for the caller to
        remove (``remove_folders``)."""
        self.jobs[job.id] = job
        forgotten = []
        while len(self.jobs) > KEPT_JOBS:
            oldest = self.jobs.pop(next(iter(self.jobs)))
            if oldest.task is not None and not oldest.task.done():
                self.jobs[oldest.id] = oldest  # still running: kept
                break
            forgotten.append(oldest.folder)
        return forgotten


def remove_folders(folders: list[Path]) -> None:
    """Remove import jobs' folders: an error report holds the rejected rows, personal data not kept once its
    job is forgotten (a job lives in the service's memory: a shutdown forgets them all)."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


IMPORT_JOBS = web.AppKey("console_import_jobs", ImportJobs)


@dataclass
class Search:
    name: str = ""
    phone: str = ""
    area: str = ""
    group: str = ""
    topic: str = ""

    @property
    def phone_end(self) -> str:
        return "".join(ch for ch in self.phone if ch in "0123456789")[-11:]

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in (("area", self.area), ("group", self.group), ("topic", self.topic)) if v}


def _search(request: web.Request) -> Search:
    query = request.query
    search = Search(*(str(query.get(name, ""))[:100].strip() for name in ("name", "phone", "area", "group", "topic")))
    errors = []
    if search.area:
        try:
            area_level(search.area)
        except ValueError as exc:
            errors.append(FieldError("area", str(exc)))
    if errors:
        raise InvalidInput("invalid search", errors)
    return search


async def _scope(console: Console) -> PersonalDataScope | None:
    return await personal_data_scope(console.store, console.staff.as_key())


async def _find(
    console: Console, search: Search, cursor: str | None, limit: int
) -> tuple[list[Subscriber], str | None]:
    scope = await _scope(console)
    if scope is not None and search.group:
        scope.check_groups([search.group], "group")
    return await console.store.search_subscribers(
        name=search.name or None, phone_end=search.phone_end or None, area=search.area or None,
        group=search.group or None, topic=search.topic or None, cursor=cursor, limit=limit, scope=scope,
    )  # fmt: skip


async def _choices(console: Console) -> dict[str, Any]:
    scope = await _scope(console)
    groups, _ = await console.store.list_groups(None, 500)
    topics, _ = await console.store.list_topics(None, 500)
    return {
        "towns": area_tree(await console.store.list_areas()),
        "groups": [g for g in groups if scope is None or g.code in scope.groups],
        "topics": topics,
        "area_names": await console.store.printable_area_names(),
    }


@page()
async def residents(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        search = _search(request)
    except InvalidInput as exc:
        return console.render("residents.html", status=422, search=Search(), found=None, next_cursor=None,
                              errors={e.loc: e.msg for e in exc.errors}, **await _choices(console))  # fmt: skip
    searched = any((search.name, search.phone, search.area, search.group, search.topic, request.query.get("all")))
    found, next_cursor = None, None
    if searched:
        found, next_cursor = await _find(console, search, request.query.get("cursor"), PAGE_ROWS)
        detail = {"filter": search.filters(), "by_name": bool(search.name), "by_phone": bool(search.phone),
                  "rows": len(found)}  # fmt: skip
        await console.store.audit(console.staff.actor, "subscriber.list", "subscriber", None, detail)
    return console.render("residents.html", search=search, found=found, next_cursor=next_cursor, errors={},
                          **await _choices(console))  # fmt: skip


@page(same_origin=True)
async def export_csv(request: web.Request, console: Console) -> web.StreamResponse:
    search = _search(request)
    found, _ = await _find(console, search, None, EXPORT_ROWS)
    await console.store.audit(console.staff.actor, "subscriber.export", "subscriber", None,
                              {"filter": search.filters(), "rows": len(found)})  # fmt: skip
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(EXPORT_COLUMNS)
    for s in found:
        withdrawn = s.consent.withdrawn_at.isoformat() if s.consent.withdrawn_at else ""
        writer.writerow(csv_row([s.id, s.external_id, s.name, s.phone, s.email, s.area_code, " ".join(s.groups),
                                 " ".join(s.topics), " ".join(s.channels), s.language, s.consent.source,
                                 s.consent.at.isoformat(), withdrawn]))  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="residents.csv"'}
    return web.Response(body=("\ufeff" + text.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers=headers)  # fmt: skip


@page()
async def resident(request: web.Request, console: Console) -> web.StreamResponse:
    subscriber_id = path_int(request, "id")
    scope = await _scope(console)
    subscriber = await console.store.get_subscriber(subscriber_id, scope)
    await console.store.audit(console.staff.actor, "subscriber.read", "subscriber", subscriber_id)
    department = None if scope is None else console.staff.department
    return console.render(
        "resident.html",
        resident=subscriber,
        deliveries=await console.store.subscriber_deliveries(subscriber_id, department),
        history=await console.store.subscriber_history(subscriber_id),
        area_names=await console.store.printable_area_names(),
    )


@page(roles=IMPORTERS)
async def start_import(request: web.Request, console: Console) -> web.StreamResponse:
    upload = console.form.get("file")
    t = console.t
    if not isinstance(upload, FileField) or not upload.filename:
        raise InvalidInput(t("请选择一个 CSV 或 XLSX 文件", "Choose a CSV or XLSX file"), [FieldError("file", "")])
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (*CSV_SUFFIXES, *XLSX_SUFFIXES):
        raise InvalidInput(t("只能导入 .csv 或 .xlsx 文件", "Only .csv and .xlsx files"), [FieldError("file", "")])
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="notifier-import-"))
    roster = folder / f"roster{suffix}"
    await asyncio.to_thread(_save, upload, roster)
    job = ImportJob(secrets.token_urlsafe(12), console.staff.id, Path(upload.filename).name[:100], folder)
    forgotten = request.app[IMPORT_JOBS].add(job)
    if forgotten:
        await asyncio.to_thread(remove_folders, forgotten)
    scope = await _scope(console)
    job.task = asyncio.create_task(_run(console.store, console.staff.actor, job, roster, scope))
    raise redirect(f"{RESIDENTS_PATH}/import/{job.id}")


def _save(upload: FileField, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)


async def _run(store: Store, actor: str, job: ImportJob, roster: Path, scope: PersonalDataScope | None) -> None:
    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        job.result = await import_file(store, roster, actor=actor, report_path=job.report,
                                       progress=progress, scope=scope)  # fmt: skip
    except InvalidInput as exc:
        job.error = "; ".join(f"{e.loc}: {e.msg}" for e in exc.errors) or exc.detail
    except asyncio.CancelledError:
        log.warning("console import %s cancelled after %d of %d rows", job.id, job.done, job.total)
        job.interrupt()
        raise
    except Exception:
        log.exception("console import %s failed", job.id)
        job.error = "the import stopped; see the service log"
    finally:
        await asyncio.to_thread(roster.unlink, True)  # the roster holds personal data: not kept


def _job(console: Console) -> ImportJob:
    job = console.request.app[IMPORT_JOBS].jobs.get(console.request.match_info["job"])
    if job is None or job.staff_id != console.staff.id:
        raise NotFound(console.t("没有这个导入任务", "No such import"))
    return job


@page(roles=IMPORTERS)
async def import_status(request: web.Request, console: Console) -> web.StreamResponse:
    return console.render("resident_import.html", job=_job(console))


@page(roles=IMPORTERS, same_origin=True)
async def import_report(request: web.Request, console: Console) -> web.StreamResponse:
    job = _job(console)
    if job.result is None or not job.report.is_file():
        raise NotFound(console.t("报告尚未生成", "The report is not ready"))
    body = await asyncio.to_thread(job.report.read_bytes)
    headers = {"Content-Disposition": 'attachment; filename="import-errors.csv"'}
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers=headers)


def setup(app: web.Application) -> None:
    app[IMPORT_JOBS] = ImportJobs()
    app.on_shutdown.append(_shutdown_begins)


async def _shutdown_begins(app: web.Application) -> None:
    app[IMPORT_JOBS].stopping_at = asyncio.get_running_loop().time()


async def imports_ctx(app: web.Application) -> AsyncIterator[None]:
    """On shutdown, wait for the running imports (a cleanup context: it runs once the server has finished
    its requests, so no import starts after it; place it after the database's so that it runs before the
    database closes), until ``[engine] lease_seconds`` after the shutdown began; then cancel those still
    running, mark their jobs interrupted and give them as long again to roll back. Then remove every job's
    folder: the jobs are forgotten with the process."""
    yield
    imports = app[IMPORT_JOBS]
    try:
        await _wait_for_imports(app, imports)
    finally:
        await asyncio.to_thread(remove_folders, [job.folder for job in imports.jobs.values()])


async def _wait_for_imports(app: web.Application, imports: ImportJobs) -> None:
    running = {job.task: job for job in imports.jobs.values() if job.task is not None and not job.task.done()}
    if not running:
        return
    loop = asyncio.get_running_loop()
    grace = app[SETTINGS].engine.lease_seconds
    left = max(0.0, (imports.stopping_at or loop.time()) + grace - loop.time())
    log.info("waiting for %d console imports to finish, %.1f s at most", len(running), left)
    _, stuck = await asyncio.wait(running, timeout=left)
    for task in stuck:
        job = running[task]
        log.warning("console import %s still running %.1f s after the shutdown began, after %d of %d rows: "
                    "cancelled", job.id, grace, job.done, job.total)  # fmt: skip
        job.interrupt()
        task.cancel()
    if stuck:
        _, unstopped = await asyncio.wait(stuck, timeout=grace)
        for task in unstopped:
            log.warning("console import %s did not stop when cancelled; the database closes under it", running[task].id)


NAV_ITEMS = [NavItem(RESIDENTS_PATH, "居民", "Residents")]
ROUTES = [
    ("GET", RESIDENTS_PATH, residents),
    ("GET", f"{RESIDENTS_PATH}/export.csv", export_csv),
    ("POST", f"{RESIDENTS_PATH}/import", start_import),
    ("GET", f"{RESIDENTS_PATH}/import/{{job}}", import_status),
    ("GET", f"{RESIDENTS_PATH}/import/{{job}}/report.csv", import_report),
    ("GET", f"{RESIDENTS_PATH}/{{id}}", resident),
]
