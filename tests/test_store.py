"""The store: migrations, append-only audit, contact normalisation. The tests that reach into SQLite itself
run on SQLite only; tests/test_postgres_store.py checks the same on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from notifier.config import Settings
from notifier.domain.contacts import area_level, mask_phone, normalise_phone, parent_code
from notifier.store import Store, open_database
from notifier.store.queries import parse_blocks
from notifier.store.sqlite import SqliteDatabase

sqlite_only = pytest.mark.sqlite_only("SQLite's own writer connection and file lock; see tests/test_postgres_store.py")


async def test_migrations_run_from_empty_and_rerun_harmlessly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    db = await open_database(url)
    applied = await db.migrate()
    assert applied[0] == "sqlite_001_initial.sql"
    assert applied == sorted(applied)
    assert await db.migrate() == []
    await db.close()
    db = await open_database(url)
    assert await db.migrate() == []
    await db.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert versions == sorted(set(versions)) and versions[0] == 1


async def test_a_missing_lower_migration_is_applied_after_a_higher_one(tmp_path: Path) -> None:
    """Branches land migrations in either order: a version below the highest recorded still runs."""
    url = f"sqlite:///{tmp_path}/m.db"
    db = await open_database(url)
    await db.migrate()
    await db.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("DROP TABLE hook_nonces")
        conn.execute("DELETE FROM schema_version WHERE version = 9")
    db = await open_database(url)
    assert await db.migrate() == ["sqlite_009_hook_nonces.sql"]
    await db.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM hook_nonces").fetchone()[0] == 0


@sqlite_only
async def test_audit_log_is_append_only(store: Store) -> None:
    await store.audit("test", "thing.happen", "thing", 1, {"k": "v"})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with store.db.transaction():
            await store.db.writer.execute("UPDATE audit_log SET action = 'forged'")  # type: ignore[attr-defined]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with store.db.transaction():
            await store.db.writer.execute("DELETE FROM audit_log")  # type: ignore[attr-defined]
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 10})
    assert [r["action"] for r in rows] == ["thing.happen"]


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises((sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)):
        await store.db.execute(
            "insert_area", {"code": "370725009001", "name": "x", "level": "village", "parent": "370725009"}
        )


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.db.transaction():
            await store.upsert_topic("water", "供水")
            raise RuntimeError("boom")
    assert await store.db.fetch_one("get_topic", {"code": "water"}) is None



@sqlite_only
async def test_a_writer_cancelled_while_waiting_for_begin_leaves_no_transaction_open(
    store: Store, settings: Settings
) -> None:
    path = settings.database.url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with store.db.transaction():
            await store.upsert_topic("water", "供水")

    task = asyncio.create_task(write())
    await asyncio.sleep(0.1)  # BEGIN IMMEDIATE is waiting on the connection's thread (busy timeout)
    task.cancel()
    await asyncio.sleep(0.1)  # the cancelled task holds the lock until its BEGIN is rolled back...
    other.execute("COMMIT")  # ...which happens once the BEGIN goes through
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    await write()  # a new transaction can begin on the writer connection
    assert await store.db.fetch_one("get_topic", {"code": "water"}) is not None


@sqlite_only
async def test_a_begin_that_fails_leaves_the_task_outside_any_transaction(store: Store, settings: Settings) -> None:
    path = settings.database.url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    await store.db.writer.execute("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        async with store.db.transaction():
            pass
    other.execute("ROLLBACK")
    other.close()
    with pytest.raises(RuntimeError):  # the next transaction is a real one again: all or nothing
        async with store.db.transaction():
            await store.upsert_topic("water", "供水")
            raise RuntimeError("boom")
    assert await store.db.fetch_one("get_topic", {"code": "water"}) is None

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+1 415 555 2671", "+14155552671"),
    ],
)
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "10000000000", "053612345678", "hello"])
def test_phone_rejection(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw)


def test_area_codes_and_masking() -> None:
    assert area_level("370725").value == "county"
    assert parent_code("370725001036") == "370725001"
    assert parent_code("370725001") == "370725"
    assert parent_code("370725") is None
    with pytest.raises(ValueError):
        area_level("3707250")
    assert mask_phone("+8613800138000") == "+86138****8000"


def test_named_blocks_reject_duplicates() -> None:
    assert parse_blocks("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;") == {"a": "SELECT 1", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="twice"):
        parse_blocks("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")


def test_statements_that_write_are_recognised_behind_comments() -> None:
    from notifier.store.sqlite import _is_write

    assert _is_write("-- moves the poll first\nUPDATE t SET a = 1 RETURNING id")
    assert _is_write("INSERT INTO t VALUES (1)")
    assert _is_write("WITH x AS (SELECT 1) UPDATE t SET a = 1 RETURNING id")
    assert not _is_write("-- a comment\nSELECT * FROM t")
    assert not _is_write("WITH x AS (SELECT 1) SELECT * FROM x")
    queries = SqliteDatabase(":memory:").queries
    assert _is_write(queries["claim_area_polls"])  # starts with a comment, then UPDATE ... RETURNING
    assert not _is_write(queries["early_receipts_for_deliveries"])
