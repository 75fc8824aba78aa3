"""SQLite database on aiosqlite: WAL, foreign keys on, one writer connection and one reader."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite

from notifier.store.audit_chain import sha256_hex
from notifier.store.database import Database, Row
from notifier.store.queries import load_queries, migrations

_in_transaction: contextvars.ContextVar[SqliteDatabase | None] = contextvars.ContextVar(
    "sqlite_transaction", default=None
)

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
)


def _dict_rows() -> Callable[[sqlite3.Cursor, tuple[Any, ...]], dict[str, Any]]:
    """A row factory making each row a dict as SQLite's thread reads it (for one connection: its closure is used by
    that connection's thread only). ``dict(sqlite3.Row)`` on the event loop looked each column up by name, every
    name compared with every column's: about 28,000 instructions of the loop for a claimed delivery of 17 columns
    (``bench sms``), against some 4,000 for ``dict(zip(names, values))`` here. A statement's description is one
    tuple for all its rows, so its names are read once a statement."""
    last: list[Any] = [None, ()]

    def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
        description = cursor.description
        if description is not last[0]:
            last[0], last[1] = description, tuple(column[0] for column in description)
        return dict(zip(last[1], values, strict=True))

    return dict_row


def _check_opens(path: str) -> None:
    """sqlite3.Error when SQLite cannot open (or create) the database file."""
    sqlite3.connect(path).close()


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.queries = load_queries(self.dialect)
        self._writes: dict[str, bool] = {}  # by query name: whether it changes data (see _is_write)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def connect(self) -> None:
        # opened once without aiosqlite first: a connection it fails to open leaves its thread behind
        await asyncio.to_thread(_check_opens, self.path)
        self._writer = await self._open()
        self._reader = await self._open() if self.path != ":memory:" else self._writer

    async def _open(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = _dict_rows()  # type: ignore[assignment]  # typed as a class; sqlite3 takes any callable
        try:
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
            await conn.create_function("sha256_hex", 1, sha256_hex, deterministic=True)
        except sqlite3.Error:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        for conn in {id(c): c for c in (self._reader, self._writer) if c is not None}.values():
            await conn.close()
        self._writer = self._reader = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not connected")
        return self._writer

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self.transaction():
            await self.writer.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            # every version not yet recorded is applied, not only those above the highest: branches that
            # each add a migration may land in either order
            cursor = await self.writer.execute("SELECT version FROM schema_version")
            done = {row["version"] for row in await cursor.fetchall()}
            for version, name, sql in migrations(self.dialect):
                if version in done:
                    continue
                for statement in _split_statements(sql):
                    await self.writer.execute(statement)
                await self.writer.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, datetime.now(UTC).isoformat()),
                )
                applied.append(name)
        return applied

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if _in_transaction.get() is self:
            yield
            return
        async with self._write_lock:
            token = _in_transaction.set(self)
            try:
                # inside the try: a task cancelled while BEGIN waits its turn on the connection's thread
                # still has it run there, and must roll it back before the next writer takes the lock
                await self.writer.execute("BEGIN IMMEDIATE")
                yield
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            else:
                await asyncio.shield(self.writer.execute("COMMIT"))
            finally:
                _in_transaction.reset(token)

    async def _rollback(self) -> None:
        """ROLLBACK; nothing to do when BEGIN itself failed (the database stayed locked)."""
        try:
            await self.writer.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if "no transaction is active" not in str(exc):
                raise

    def _read_conn(self) -> aiosqlite.Connection:
        if _in_transaction.get() is self:
            return self.writer
        if self._reader is None:
            raise RuntimeError("database is not connected")
        return self._reader

    async def fetch_all(self, query: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        sql = self.queries[query]
        writes = self._writes.get(query)
        if writes is None:
            writes = self._writes[query] = _is_write(sql)
        if writes:
            async with self.transaction():
                return cast(list[Row], await self.writer.execute_fetchall(sql, params or {}))  # dicts: _dict_rows
        return cast(list[Row], await self._read_conn().execute_fetchall(sql, params or {}))

    async def fetch_one(self, query: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch_all(query, params)
        return rows[0] if rows else None

    async def execute(self, query: str, params: Mapping[str, Any] | None = None) -> int:
        async with self.transaction():
            cursor = await self.writer.execute(self.queries[query], params or {})
            return cursor.rowcount

    async def execute_many(self, query: str, rows: Iterable[Mapping[str, Any]]) -> None:
        async with self.transaction():
            await self.writer.executemany(self.queries[query], rows)

    async def stream(
        self, query: str, params: Mapping[str, Any] | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[Row]]:
        cursor = await self._read_conn().execute(self.queries[query], params or {})
        try:
            while True:
                rows = await cursor.fetchmany(chunk)
                if not rows:
                    return
                yield cast(list[Row], rows)
        finally:
            await cursor.close()

    async def refresh_statistics(self, table: str) -> None:
        """Nothing: the store never runs SQLite's ANALYZE, so its planner has no statistics to bring up to date."""


def _is_write(sql: str) -> bool:
    """A statement that changes data must run on the writer connection, even when it returns rows."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()
    head = code.split(None, 1)[0].upper() if code else ""
    if head in {"INSERT", "UPDATE", "DELETE", "REPLACE"}:
        return True
    return head == "WITH" and any(word in code.upper() for word in ("INSERT ", "UPDATE ", "DELETE "))


def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not buffer:
            continue
        buffer.append(line)
        candidate = "\n".join(buffer)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            buffer = []
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer).strip())
    return statements
