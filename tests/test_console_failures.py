"""What fails under /console after a page starts (an error no code handled, a database another process holds
locked) is the console's error page with the console's security headers, in the staff member's language, saying
nothing of the error; it is logged as the API logs its own 500s, and the API keeps its problem documents."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator

import aiohttp
import pytest

from notifier.api.problems import DATABASE_LOCKED_RETRY_AFTER
from notifier.console.security import HEADERS
from notifier.domain.errors import Conflict
from tests.conftest import Api
from tests.console_sign_in import signed_in_session

INTERNALS = "roster table 7f3a is corrupt"  # what must stay in the log, never on the page


@pytest.fixture
async def clerk(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    session = await signed_in_session(api.store, api.base, department="environment", name="赵文员")
    try:
        yield session
    finally:
        await session.close()


def make_raise(monkeypatch: pytest.MonkeyPatch, api: Api, method: str, exc: Exception) -> None:
    async def failing(*args: object, **kwargs: object) -> object:
        raise exc

    monkeypatch.setattr(api.store, method, failing)


def make_list_rosters_raise(monkeypatch: pytest.MonkeyPatch, api: Api, exc: Exception) -> None:
    """The rosters page reads its list through this method."""
    make_raise(monkeypatch, api, "list_rosters", exc)


def assert_console_page(response: aiohttp.ClientResponse, status: int) -> None:
    assert response.status == status and response.content_type == "text/html", response.content_type
    assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


async def test_an_error_no_page_handled_is_the_console_500_page_and_is_logged(
    api: Api, clerk: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_list_rosters_raise(monkeypatch, api, RuntimeError(INTERNALS))
    with caplog.at_level(logging.ERROR, logger="notifier.api"):
        async with clerk.get("/console/rosters?lang=en") as response:
            assert_console_page(response, 500)
            page = await response.text()
    assert "Something went wrong" in page and "the error was logged" in page
    assert INTERNALS not in page and "RuntimeError" not in page and "Traceback" not in page
    [record] = [r for r in caplog.records if r.name == "notifier.api"]
    assert record.getMessage() == "unhandled error on GET /console/rosters" and record.levelno == logging.ERROR
    assert record.exc_info is not None and str(record.exc_info[1]) == INTERNALS

    async with clerk.get("/console/rosters?lang=zh") as response:
        assert_console_page(response, 500)
        assert "服务器出错" in await response.text()


async def test_a_locked_database_is_the_console_503_page_with_retry_after(
    api: Api, clerk: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_list_rosters_raise(monkeypatch, api, sqlite3.OperationalError("database is locked"))
    with caplog.at_level(logging.WARNING, logger="notifier.api"):
        async with clerk.get("/console/rosters?lang=en") as response:
            assert_console_page(response, 503)
            assert response.headers["Retry-After"] == str(DATABASE_LOCKED_RETRY_AFTER)
            page = await response.text()
    assert f"The database is busy; try again in {DATABASE_LOCKED_RETRY_AFTER} seconds" in page
    assert "database is locked" not in page
    messages = [r.getMessage() for r in caplog.records if r.name == "notifier.api"]
    assert messages == ["database locked on GET /console/rosters: answered 503"]


async def test_the_api_keeps_its_problem_documents_for_the_same_failures(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_raise(monkeypatch, api, "roster_for_key", RuntimeError(INTERNALS))
    status, body = await api.call("GET", "/api/v1/rosters/1", key="env-viewer")
    assert status == 500 and body["type"] == "/problems/internal" and INTERNALS not in str(body), body
    make_raise(monkeypatch, api, "roster_for_key", sqlite3.OperationalError("database is locked"))
    status, body = await api.call("GET", "/api/v1/rosters/1", key="env-viewer")
    assert status == 503 and body["type"] == "/problems/unavailable", body


async def test_a_domain_error_before_the_page_runs_is_the_console_page_of_its_status(
    api: Api, clerk: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page decorator shows a handler's NotifierError itself; one raised while it looks the session up keeps
    its status too, on the console's page."""
    make_raise(monkeypatch, api, "find_staff_session", Conflict("the session is being changed"))
    async with clerk.get("/console/rosters?lang=en") as response:
        assert_console_page(response, 409)
        assert "the session is being changed" in await response.text()
