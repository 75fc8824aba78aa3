"""The audit log as a hash chain: every writer extends one chain, and `notifier audit verify` finds tampering."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from notifier.store import Store, open_database
from notifier.store import audit as audit_module
from notifier.store.audit_chain import GENESIS, canonical, entry_hash
from notifier.store.postgres import PostgresDatabase
from notifier.store.queries import migrations
from notifier.store.sqlite import _split_statements
from tests.databases import run_sql, url_of
from tests.test_cli import run_cli

DETAILS: list[dict[str, object]] = [
    {"reason": "暴雨 红色预警"},
    {"text": 'quote " backslash \\ tab \t newline \n bell \x07 del \x7f'},
    {"fields": ["phone", "topics"]},
    {"emoji": "🌧", "n": 3, "ok": True, "none": None},
    {},
]


def url(store: Store) -> str:
    return url_of(store.db)


async def tamper(store: Store, *statements: str) -> None:
    """What someone with the database's owner rights can do: lift the append-only triggers and edit rows."""
    if isinstance(store.db, PostgresDatabase):
        conn = await asyncpg.connect(store.db.dsn)
        try:
            async with conn.transaction():
                await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
                for statement in statements:
                    await conn.execute(statement)
        finally:
            await conn.close()
        return
    conn = sqlite3.connect(store.db.path)  # type: ignore[attr-defined]
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


async def write_entries(store: Store) -> int:
    for i, detail in enumerate(DETAILS):
        await store.audit("test", "thing.happen", "thing", i, detail)
    return await count(store)


async def count(store: Store) -> int:
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100_000})
    return len(rows)


async def verify(store: Store) -> tuple[int, str]:
    code, out, err = await run_cli("audit", "verify", db_url=url(store))
    assert code in (0, 1), err
    return code, out


async def test_an_untouched_chain_verifies_with_its_count(store: Store) -> None:
    total = await write_entries(store)
    code, out = await verify(store)
    assert code == 0, out
    assert f"intact: {total} entries" in out
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100_000})
    assert [r["id"] for r in rows] == list(range(1, total + 1))
    assert rows[0]["prev_hash"] == GENESIS
    assert all(row["prev_hash"] == before["hash"] for before, row in itertools.pairwise(rows))
    assert rows[-1]["hash"] in out


async def test_changed_details_are_named_as_a_hash_mismatch(store: Store) -> None:
    await write_entries(store)
    await tamper(store, """UPDATE audit_log SET detail = '{"reason":"nothing"}' WHERE id = 3""")
    code, out = await verify(store)
    assert code == 1
    assert "audit entry 3 (at " in out and "hash mismatch" in out and "previous-hash" not in out


async def test_a_rewritten_entry_with_a_fresh_hash_breaks_the_next_link(store: Store) -> None:
    await write_entries(store)
    [row] = await run_sql(store.db, "SELECT * FROM audit_log WHERE id = 2")
    forged = {**row, "actor": "someone-else"}
    await tamper(store, f"UPDATE audit_log SET actor = 'someone-else', hash = '{entry_hash(forged)}' WHERE id = 2")
    code, out = await verify(store)
    assert code == 1
    assert "audit entry 3 (at " in out and "previous-hash mismatch" in out


async def test_a_deleted_entry_is_named_as_a_gap(store: Store) -> None:
    await write_entries(store)
    await tamper(store, "DELETE FROM audit_log WHERE id = 3")
    code, out = await verify(store)
    assert code == 1
    assert "audit entry 4 (at " in out and "gap: entry 3 is missing" in out


async def test_reordered_entries_are_named(store: Store) -> None:
    await write_entries(store)
    await tamper(
        store,
        "UPDATE audit_log SET id = -2 WHERE id = 2",
        "UPDATE audit_log SET id = 2 WHERE id = 3",
        "UPDATE audit_log SET id = 3 WHERE id = -2",
    )
    code, out = await verify(store)
    assert code == 1
    assert "audit entry 2 (at " in out and "previous-hash mismatch" in out


async def test_verify_reads_in_pages_and_finds_a_break_past_the_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "PAGE", 2)
    await write_entries(store)
    result = await store.verify_audit_chain()
    assert result.broken is None and result.count == await count(store)
    await tamper(store, """UPDATE audit_log SET object_id = '99' WHERE id = 5""")
    result = await store.verify_audit_chain()
    assert result.broken is not None and result.broken.id == 5 and result.count == 4


async def test_concurrent_writers_in_two_connections_extend_one_chain(store: Store) -> None:
    other = Store(await open_database(url(store)))
    try:
        writers = [
            writer.audit(f"writer-{n % 2}", "thing.happen", "thing", n, {"n": n})
            for n, writer in enumerate([store, other] * 40)
        ]
        await asyncio.gather(*writers)
    finally:
        await other.db.close()
    result = await store.verify_audit_chain()
    assert result.broken is None, str(result.broken)
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100_000})
    assert sorted(json.loads(r["detail"]).get("n", -1) for r in rows if r["action"] == "thing.happen") == list(
        range(80)
    )


@pytest.mark.sqlite_only("the recipe of docs/audit.md is SQLite's json_array")
async def test_the_chain_recomputes_with_sqlite_json_array_and_sha256(store: Store) -> None:
    """The recipe of docs/audit.md: SQLite's json_array gives the canonical bytes."""
    await write_entries(store)
    conn = sqlite3.connect(store.db.path)  # type: ignore[attr-defined]
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT *, json_array(id, at, actor, action, object_type, object_id, detail, prev_hash) AS canon"
            " FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) >= len(DETAILS)
    for row in rows:
        assert row["canon"].encode() == canonical(dict(row))
        assert hashlib.sha256(row["canon"].encode()).hexdigest() == row["hash"]


async def test_personal_fields_are_masked_in_the_log(store: Store) -> None:
    await store.audit("test", "subscriber.update", "subscriber", 7, {
        "before": {"name": "张三丰", "phone": "+8613800138000"}, "after": {"name": "李四", "phone": "+8613900139000"},
    })  # fmt: skip
    await store.audit("test", "area.create", "area", "520102", {"name": "南明区"})
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100_000})
    assert json.loads(rows[-2]["detail"]) == {
        "before": {"name": "张*丰", "phone": "138****8000"}, "after": {"name": "李*", "phone": "139****9000"},
    }  # fmt: skip
    assert json.loads(rows[-1]["detail"]) == {"name": "南明区"}


@pytest.mark.sqlite_only("SQLite's migration 011 chains earlier entries; PostgreSQL had none (docs/storage.md)")
async def test_the_upgrade_chains_entries_written_before(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TEXT NOT NULL)")  # fmt: skip
        for version, name, sql in migrations("sqlite"):
            if name.endswith("_audit_chain.sql"):
                break
            for statement in _split_statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, '2026-01-01')", (version, name))
        for i, detail in enumerate(DETAILS * 3):
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (f"2026-01-01T00:00:{i:02d}.000000+00:00", "cli", "old.thing", "thing", None if i % 2 else str(i),
                 json.dumps(detail, ensure_ascii=False)),
            )  # fmt: skip
    finally:
        conn.close()
    db = await open_database(f"sqlite:///{path}")
    try:
        assert any(name.endswith("_audit_chain.sql") for name in await db.migrate())
        store = Store(db)
        await store.audit("test", "new.thing", "thing", 1)
        result = await store.verify_audit_chain()
        assert result.broken is None, str(result.broken)
        assert result.count == len(DETAILS) * 3 + 1
    finally:
        await db.close()
