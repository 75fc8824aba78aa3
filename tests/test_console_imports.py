"""A console import of residents runs in the background of the service: over HTTP (no browser), what a shutdown
does to one still running. The pages themselves are tested in tests/browser/test_console_residents.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.console.residents import IMPORT_JOBS
from notifier.store import Store
from notifier.store.audit import AuditFilter
from tests.console_sign_in import CSRF_FIELD, signed_in_session
from tests.databases import read_rows

VILLAGE = "370725001036"


class HeldStore(Store):
    """The store, with an import's last step (its audit entry) held until the test lets it go."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.db)
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def audit(self, actor: str, action: str, *args: Any, **kwargs: Any) -> Any:
        if action == "subscriber.import":
            self.reached.set()
            await self.release.wait()
        return await super().audit(actor, action, *args, **kwargs)


class StuckStore(Store):
    """The store, with an import's first batch stuck in its transaction (on an event nobody sets), as on a lock
    that is never released."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.db)
        self.reached = asyncio.Event()
        self.never = asyncio.Event()

    async def audit_many(self, actor: str, entries: Any) -> Any:
        if any(entry[0] == "subscriber.create" for entry in entries):  # the import's batch, not a login's entry
            self.reached.set()
            await self.never.wait()
        return await super().audit_many(actor, entries)


class Said(logging.Handler):
    """Sets ``event`` when a record's message starts with ``start``."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.start):
            self.event.set()


async def upload_roster(server: TestServer, store: Store) -> None:
    """An issuer logs in to the console and uploads a roster of two residents; the import starts."""
    base = str(server.make_url(""))
    async with await signed_in_session(store, base, department="environment", name="李文员") as session:
        async with session.get("/console/residents") as response:
            token = CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]
        upload = aiohttp.FormData({"csrf_token": token})
        roster = f"name,phone,area_code\n王伟,13812345678,{VILLAGE}\n张敏,13812345679,{VILLAGE}\n"
        upload.add_field("file", roster.encode(), filename="roster.csv", content_type="text/csv")
        async with session.post("/console/residents/import", data=upload, allow_redirects=False) as response:
            assert response.status == 303, await response.text()


async def test_shutdown_waits_for_a_running_import(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    held = HeldStore(store)
    app = create_app(settings, store=held)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    said = Said("waiting for 1 console imports")
    caplog.set_level(logging.INFO, "notifier.console.residents")
    logging.getLogger("notifier.console.residents").addHandler(said)
    closing = waiting = None
    try:
        await upload_roster(server, store)
        [job] = app[IMPORT_JOBS].jobs.values()
        await held.reached.wait()  # the rows are written; the import's audit entry is not

        closing = asyncio.create_task(server.close())
        waiting = asyncio.create_task(said.event.wait())
        await asyncio.wait([closing, waiting], return_when=asyncio.FIRST_COMPLETED)
        assert not closing.done(), "the service shut down with the import still running"
        held.release.set()
        await closing
    finally:
        logging.getLogger("notifier.console.residents").removeHandler(said)
        held.release.set()  # on a failure: no task left pending
        await asyncio.gather(*(job.task for job in app[IMPORT_JOBS].jobs.values() if job.task is not None))
        if waiting is not None:
            waiting.cancel()
        await (closing if closing is not None else server.close())

    assert job.task is not None and job.task.done() and job.error is None
    assert job.result is not None and (job.result.total, job.result.imported) == (2, 2)
    assert not job.folder.exists(), "the import's folder (its roster, its error report) outlived the service"
    entries, _ = await store.list_audit(AuditFilter(action="subscriber.import"), None, 10)
    assert [entry.detail["imported"] for entry in entries] == [2]


async def test_shutdown_cancels_an_import_stuck_past_the_grace(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A stuck import holds the shutdown for ``[engine] lease_seconds`` (here 0.2 s), no longer: it is cancelled,
    its batch rolled back, and its job says it was interrupted, with no result claimed."""
    grace = 0.2
    settings = settings.model_copy(update={"engine": settings.engine.model_copy(update={"lease_seconds": grace})})
    stuck = StuckStore(store)
    app = create_app(settings, store=stuck)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    caplog.set_level(logging.INFO, "notifier.console.residents")
    try:
        await upload_roster(server, store)
        [job] = app[IMPORT_JOBS].jobs.values()
        await stuck.reached.wait()  # the first batch's rows are written in its transaction, not committed
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(server.close(), timeout=30)  # without a bound: for ever
        took = loop.time() - began
    finally:
        for task in [j.task for j in app[IMPORT_JOBS].jobs.values() if j.task is not None and not j.task.done()]:
            task.cancel()  # on a failure: no task left pending
            await asyncio.gather(task, return_exceptions=True)
        await server.close()

    assert took >= grace
    assert job.task is not None and job.task.cancelled()
    assert job.result is None and job.error is not None and "interrupted after 0 rows" in job.error
    assert not job.folder.exists(), "the interrupted import's folder outlived the service"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"console import {job.id} still running" in message for message in warnings), warnings
    assert await read_rows(settings.database.url, "SELECT COUNT(*) FROM subscribers") == [(0,)]  # rolled back
    entries, _ = await store.list_audit(AuditFilter(action="subscriber.import"), None, 10)
    assert entries == []
