"""Moving a SQLite installation to PostgreSQL (``notifier migrate --from sqlite:///old.db``).

The target is migrated first and must hold no data. Every table is then copied in foreign-key order (a table
after the tables it refers to), each with one ``COPY`` fed from the SQLite file a chunk at a time, so memory
stays flat whatever the size; ids are kept as they are, and each identity sequence is then moved past the
highest id. Everything happens in one transaction: a failure leaves the target as empty as it was.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from notifier.domain.errors import ConfigError
from notifier.store.postgres import PostgresDatabase
from notifier.store.queries import migrations

CHUNK = 5000  # rows read from SQLite at a time
SOURCE_OPTION = "--from"


def source_path(url: str) -> Path:
    """The SQLite file of a ``--from`` URL; ConfigError in one line when it is not one."""
    if not url.startswith("sqlite:///") or not url.removeprefix("sqlite:///"):
        raise ConfigError(f"migrate {SOURCE_OPTION}: expected sqlite:///path.db")
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        raise ConfigError(f"migrate {SOURCE_OPTION}: no SQLite database at {path}")
    return path


def _open_source(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
    except sqlite3.Error as exc:
        conn.close()
        raise ConfigError(f"migrate {SOURCE_OPTION}: {path} is not a notifier database ({exc})") from None
    missing = [name for version, name, _ in migrations("sqlite") if version not in done]
    if missing:
        conn.close()
        raise ConfigError(
            f"migrate {SOURCE_OPTION}: {path} lacks migrations {', '.join(missing)}; run notifier migrate on it first"
        )
    return conn


async def _target_tables(db: PostgresDatabase) -> list[str]:
    """The target's tables (but schema_version), each after every table its foreign keys point to."""
    async with db.pool.acquire() as conn:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_version'"
                " ORDER BY tablename"
            )
        ]
        edges = await conn.fetch(
            "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c"
            " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
        )
    needs: dict[str, set[str]] = {t: set() for t in tables}
    for edge in edges:
        if edge["child"] != edge["parent"]:  # a table referring to itself is copied in one COPY, checked at its end
            needs[edge["child"]].add(edge["parent"])
    ordered: list[str] = []
    while needs:
        ready = sorted(t for t, parents in needs.items() if not parents - set(ordered))
        if not ready:
            raise RuntimeError(f"foreign keys form a cycle among {sorted(needs)}")
        ordered += ready
        for table in ready:
            del needs[table]
    return ordered


def _fit(value: Any, kind: str) -> Any:
    """A SQLite value as the target column's type wants it (SQLite keeps whatever it was given)."""
    if value is None:
        return None
    if kind in ("bigint", "integer", "smallint"):
        return int(value)
    if kind in ("double precision", "real", "numeric"):
        return float(value)
    if kind in ("text", "character varying"):
        return value if isinstance(value, str) else str(value)
    return value


async def _rows(source: sqlite3.Connection, table: str, columns: list[str], kinds: list[str]) -> AsyncIterator[
    tuple[Any, ...]
]:
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = source.execute(f'SELECT {names} FROM "{table}"')  # names from the catalogs, not from input
    try:
        while True:
            chunk = await asyncio.to_thread(cursor.fetchmany, CHUNK)
            if not chunk:
                return
            for row in chunk:
                yield tuple(_fit(v, k) for v, k in zip(row, kinds, strict=True))
    finally:
        cursor.close()


async def copy_from_sqlite(url: str, target: PostgresDatabase) -> dict[str, int]:
    """Copy the SQLite installation at ``url`` into the (migrated, empty) target; rows copied per table."""
    path = source_path(url)
    source = await asyncio.to_thread(_open_source, path)
    try:
        await target.migrate()
        tables = await _target_tables(target)
        source_tables = {r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        copied: dict[str, int] = {}
        async with target.pool.acquire() as conn, conn.transaction():
            for table in tables:
                if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                    raise ConfigError(
                        f"migrate {SOURCE_OPTION}: the target database already holds data (table {table});"
                        " copy into an empty database"
                    )
            for table in tables:
                if table not in source_tables:
                    raise ConfigError(f"migrate {SOURCE_OPTION}: {path} has no table {table}")
                described = await conn.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    table,
                )
                have = {r[1] for r in source.execute(f'PRAGMA table_info("{table}")')}
                columns = [r["column_name"] for r in described if r["column_name"] in have]
                kinds = [r["data_type"] for r in described if r["column_name"] in have]
                status = await conn.copy_records_to_table(
                    table, columns=columns, records=_rows(source, table, columns, kinds)
                )
                copied[table] = int(status.rsplit(" ", 1)[-1])
                identity = await conn.fetchval(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                    " AND table_name = $1 AND is_identity = 'YES'",
                    table,
                )
                if identity is not None:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{identity}'),"
                        f' COALESCE(MAX("{identity}"), 0) + 1, false) FROM "{table}"'
                    )
        return copied
    finally:
        source.close()
