"""A database locked by another process for longer than the busy timeout.

Reads of residents write an audit entry and a key's first request of the minute writes its last use, so a
lock held elsewhere (a bulk import, a backup, an operator's sqlite3 shell) reaches plain GETs too. The
client is told to come back (503 with Retry-After), never a bare 500, and is served once the lock is gone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from notifier.config import Settings
from tests.conftest import VILLAGE_A1, Api

pytestmark = pytest.mark.sqlite_only("another connection's exclusive lock on the SQLite file and its busy timeout")


@pytest.fixture
async def resident(api: Api) -> int:
    person = {"name": "锁定", "phone": "13900000201", "area_code": VILLAGE_A1, "topics": ["air-quality"]}
    status, body = await api.call("POST", "/api/v1/subscribers", json=person, key="env-admin")
    assert status == 201, body
    return int(body["id"])


@pytest.fixture
def other_process_lock(api: Api, settings: Settings) -> Iterator[sqlite3.Connection]:
    """A second connection to the same file holding an exclusive transaction until the test ends."""
    other = sqlite3.connect(settings.database.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


@pytest.fixture
async def short_busy_timeout(api: Api) -> None:
    # the shipped 10 s would only make the test slow; the request fails the same way after any timeout
    await api.store.db.writer.execute("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]


async def test_a_read_that_must_write_its_audit_entry_is_a_503_with_retry_after(
    api: Api, resident: int, short_busy_timeout: None, other_process_lock: sqlite3.Connection
) -> None:
    path = f"/api/v1/subscribers/{resident}"
    async with api.session.get(api.base + path, headers={"Authorization": f"Bearer {api.keys['env-viewer']}"}) as r:
        assert r.status == 503 and r.content_type == "application/problem+json"
        assert int(r.headers["Retry-After"]) >= 1
        problem = await r.json()
    assert problem["type"] == "/problems/unavailable" and problem["instance"] == path
    assert "13900000201" not in str(problem)

    other_process_lock.execute("ROLLBACK")
    status, body = await api.call("GET", path, key="env-viewer")
    assert status == 200 and body["phone"] == "+8613900000201"
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 10_000})
    assert [r["object_id"] for r in rows if r["action"] == "subscriber.read"] == [str(resident)]


async def last_used(api: Api, name: str) -> object:
    keys, _ = await api.store.list_api_keys(department="civil-affairs", cursor=None, limit=100)
    return {key.name: key.last_used_at for key in keys}[name]


async def test_a_key_whose_last_use_cannot_be_written_is_still_served(
    api: Api, short_busy_timeout: None, other_process_lock: sqlite3.Connection
) -> None:
    """last_used_at is a hint: failing to write it must not fail a request that writes nothing else."""
    status, body = await api.call("GET", "/api/v1/notices", key="civ-viewer")
    assert status == 200 and body == {"items": [], "next_cursor": None}
    assert await last_used(api, "civ-viewer") is None  # the write was given up, not queued
    other_process_lock.execute("ROLLBACK")
    status, _ = await api.call("GET", "/api/v1/notices", key="civ-viewer")
    assert status == 200 and await last_used(api, "civ-viewer") is not None


async def test_the_openapi_document_lists_the_503_with_its_retry_after(api: Api) -> None:
    status, doc = await api.call("GET", "/openapi.json", key=None)
    assert status == 200
    answer = doc["paths"]["/api/v1/subscribers/{id}"]["get"]["responses"]["503"]
    assert "application/problem+json" in answer["content"] and "Retry-After" in answer["headers"]
