"""The two SQL dialects stay in step (docs/storage.md): the same migration versions, PostgreSQL blocks that each
replace a SQLite block, and every named query accepted by PostgreSQL on a migrated database."""

from __future__ import annotations

import re

import pytest

from notifier.store.postgres import PostgresDatabase
from notifier.store.postgres_values import translate
from notifier.store.queries import WRITTEN_FOR, dialect_blocks, fingerprint, load_queries, migrations
from tests.databases import postgres_database


def test_both_dialects_have_the_same_migration_versions() -> None:
    sqlite = [version for version, _, _ in migrations("sqlite")]
    postgres = [version for version, _, _ in migrations("postgres")]
    only_sqlite, only_postgres = set(sqlite) - set(postgres), set(postgres) - set(sqlite)
    assert sqlite == postgres, f"only SQLite: {only_sqlite}, only PostgreSQL: {only_postgres}"


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_no_two_migrations_share_a_version(dialect: str) -> None:
    """Two branches each adding migration N would both land (their files differ); a database that ran one would
    then skip the other for good, its version being recorded."""
    names_by_version: dict[int, list[str]] = {}
    for version, name, _ in migrations(dialect):
        names_by_version.setdefault(version, []).append(name)
    shared = {version: names for version, names in names_by_version.items() if len(names) > 1}
    assert not shared, f"migrations sharing a version: {shared}"


def test_every_postgres_block_replaces_a_sqlite_block() -> None:
    orphans = set(dialect_blocks("postgres")) - set(dialect_blocks("sqlite"))
    assert not orphans, f"PostgreSQL blocks with no SQLite block of that name: {sorted(orphans)}"
    assert set(load_queries("postgres")) == set(load_queries("sqlite"))


def test_every_postgres_block_was_written_for_the_sqlite_block_as_it_is() -> None:
    """A change to a SQLite block that has a PostgreSQL twin fails here until the twin is looked at again
    (and its ``-- written for sqlite <fingerprint>`` line moved to the new fingerprint)."""
    sqlite = dialect_blocks("sqlite")
    stale = []
    for name, sql in dialect_blocks("postgres").items():
        if name not in sqlite:
            continue  # the test above names it
        marks, now = WRITTEN_FOR.findall(sql), fingerprint(sqlite[name])
        if marks != [now]:
            stale.append(f"{name}: written for {marks or 'no fingerprint'}, the SQLite block is now {now}")
    assert not stale, "PostgreSQL blocks to bring in step with their SQLite block:\n" + "\n".join(stale)


def test_parameters_become_numbered_and_lists_become_arrays() -> None:
    statement = translate(
        "SELECT ':not' AS a, x::text FROM t -- :nor this\n"
        "WHERE id IN (SELECT value FROM json_each(:ids)) AND y = :y AND z <> :y "
        "AND w NOT IN (SELECT value FROM json_each(:skip))"
    )
    assert statement.sql == (
        "SELECT ':not' AS a, x::text FROM t -- :nor this\nWHERE id = ANY($1) AND y = $2 AND z <> $2 AND w <> ALL($3)"
    )
    assert statement.names == ("ids", "y", "skip")


@pytest.mark.peer("postgres")
async def test_every_named_query_prepares_on_postgres() -> None:
    """A SQLite block that PostgreSQL cannot run fails here until its PostgreSQL block is written."""
    db = PostgresDatabase(postgres_database(), max_size=1)
    await db.connect()
    failures = []
    try:
        async with db.pool.acquire() as conn:
            # the fan-out's staging tables exist only on the connection that fans out
            await conn.execute(db.statements["fanout_create_matched"].sql)
            await conn.execute(db.statements["fanout_create_chosen"].sql)
            for name in sorted(db.statements):
                try:
                    await db._parameter_types(conn, name)
                except Exception as exc:  # every failure is listed, not only the first
                    failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        await db.close()
    assert not failures, "queries PostgreSQL rejects:\n" + "\n".join(failures)


def without_comments_or_layout(sql: str) -> str:
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def test_postgres_one_statement_fan_out_matches_and_chooses_as_the_staged_blocks() -> None:
    """PostgreSQL's ``fanout_insert_deliveries`` matches and chooses in its own WITH clause (no staging table):
    its ``matched`` and ``chosen`` must be ``fanout_match``'s and ``fanout_choose``'s SELECTs, so that a change to
    who is targeted or which channel is chosen (which the preview runs through the staged blocks) reaches the
    fan-out too."""
    blocks = dialect_blocks("postgres")
    one_statement = without_comments_or_layout(blocks["fanout_insert_deliveries"])
    match = without_comments_or_layout(blocks["fanout_match"])
    choose = without_comments_or_layout(blocks["fanout_choose"]).replace("pg_temp.fanout_matched", "matched")
    assert f"matched (id, area_code, eligible) AS MATERIALIZED ( {match[match.index('SELECT'):]} )" in one_statement
    chosen = choose[choose.index("SELECT subscriber_id") :]
    assert f"chosen (subscriber_id, channel, rank, address, area_code, due_at) AS MATERIALIZED ( {chosen} )" in (
        one_statement
    )
