"""PostgreSQL database on asyncpg: a connection pool, named queries with ``:name`` parameters sent as ``$n``.

The query text of each block is translated once, when the dialect's queries are loaded (:func:`translate`).
Parameter values are fitted to the types the server infers for them the first time a query runs (SQLite takes
any value anywhere; asyncpg wants an ``int`` for ``bigint`` and a ``str`` for ``text``), and ``numeric``
results come back as ``int`` or ``float`` like SQLite's, never ``Decimal``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from notifier.domain.errors import ConfigError, FieldError, InvalidInput
from notifier.store.database import Database, Row
from notifier.store.postgres_values import NULL_TEST, Statement, decode_numeric, dicts, fit, rowcount, translate
from notifier.store.queries import load_queries, migrations

DATABASE_SETTING = "[database] url (NOTIFIER_DATABASE__URL)"
# the key of the advisory lock that serializes concurrent `notifier migrate` runs (any constant; "notifier")
MIGRATION_LOCK = 0x6E6F746966696572

_in_transaction: contextvars.ContextVar[tuple[PostgresDatabase, asyncpg.Connection] | None] = contextvars.ContextVar(
    "postgres_transaction", default=None
)


class PoolConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that knows whether it was lent only to the named statements of this module.

    asyncpg resets every connection it takes back (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL``): one more round trip after every statement outside a transaction and every transaction, about
    one in six of a worker's per batch. The named statements have nothing of that to undo: no session
    setting (SET LOCAL at most), no session advisory lock (``pg_advisory_xact_lock`` ends with its
    transaction), no LISTEN (the wake-ups and the scheduler's lock have connections of their own, outside
    the pool), no cursor outside a transaction (``stream`` reads in one; it closes at commit), and temporary
    tables are not the reset's business either. So a connection lent to them goes back as it is; one lent
    to anything else (``migrate``, ``transfer``, a caller of ``pool.acquire``) is reset in full. A
    transaction left open is rolled back by asyncpg either way."""

    __slots__ = ("named_statements_only",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.named_statements_only = False

    def lend_to_named_statements(self) -> None:
        self.named_statements_only = True


async def _reset_connection(conn: PoolConnection) -> None:
    """asyncpg's reset, skipped for a connection that only ran named statements (``PoolConnection``)."""
    if conn.named_statements_only:
        conn.named_statements_only = False
        return
    query = conn.get_reset_query()
    if query:
        await conn.execute(query)


async def _setup_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("numeric", encoder=str, decoder=decode_numeric, schema="pg_catalog", format="text")


class PostgresDatabase(Database):
    dialect = "postgres"
    writes_in_with = True
    writers_side_by_side = True
    claim_reads_notices = True
    # each chunk costs eight round trips (BEGIN, chunk end, lease, write, cursor, statistics check, COMMIT): a million
    # residents fanned out in 22, 23 and 31 s at 10,000 against 34, 51 and 33 s at 2,000 (and 57 s at 20,000)
    # on this 2-core machine at load 6. Other writers do not wait for it (row locks); its rows stay on the server.
    fanout_chunk = 10000

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.statements = {name: translate(sql) for name, sql in load_queries(self.dialect).items()}
        self._types: dict[str, tuple[str, ...]] = {}  # by query name: the server's type of each parameter
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_setup_connection,
            connection_class=PoolConnection,
            reset=_reset_connection,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not connected")
        return self._pool

    async def migrate(self) -> list[str]:
        applied: list[str] = []
        async with self.pool.acquire() as conn:
            await _check_collation(conn)
            # a session lock: a second `migrate` waits here and then finds every version recorded
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TEXT NOT NULL)"
                )
                done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_version")}
                for version, name, sql in migrations(self.dialect):
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)  # the simple protocol: many statements, $$ bodies
                        await conn.execute(
                            "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                            version,
                            name,
                            datetime.now(UTC).isoformat(),
                        )
                    applied.append(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return applied

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        current = _in_transaction.get()
        if current is not None and current[0] is self:
            yield
            return
        async with self._lent() as conn, conn.transaction():
            token = _in_transaction.set((self, conn))
            try:
                yield
            finally:
                _in_transaction.reset(token)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection of the transaction in progress, or one from the pool for this statement."""
        current = _in_transaction.get()
        if current is not None and current[0] is self:
            yield current[1]
            return
        async with self._lent() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _lent(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection from the pool for the named statements only: it goes back without asyncpg's reset
        (``PoolConnection``)."""
        async with self.pool.acquire() as conn:
            conn.lend_to_named_statements()
            yield conn

    async def _args(self, conn: asyncpg.Connection, query: str, params: Mapping[str, Any] | None) -> list[Any]:
        types = self._types.get(query)
        if types is None:
            types = self._types[query] = await self._parameter_types(conn, query)
        statement = self.statements[query]
        values = params or {}
        try:
            args = [fit(values[name], kind) for name, kind in zip(statement.names, types, strict=True)]
        except KeyError as exc:
            raise KeyError(f"query {query} needs parameter {exc.args[0]}") from None
        for name, value in zip(statement.names, args, strict=True):
            if isinstance(value, str) and "\x00" in value:  # PostgreSQL's text cannot hold U+0000; SQLite's can
                raise InvalidInput(
                    "text holding a NUL character (U+0000) cannot be stored", [FieldError(name, "contains U+0000")]
                )
        return args

    async def _parameter_types(self, conn: asyncpg.Connection, query: str) -> tuple[str, ...]:
        """The server's type of each parameter, from preparing the statement once.

        ``:p IS NULL OR column = :p`` leaves the first ``$n`` untyped on PostgreSQL: such a statement is
        prepared again with its null tests read as true, which gives every parameter the type of its other
        uses, and its null tests are then cast to that type (``$n::text IS NULL``) for good.
        """
        statement = self.statements[query]
        try:
            # in a savepoint inside a transaction: a failed prepare would abort the caller's transaction
            async with conn.transaction() if conn.is_in_transaction() else contextlib.nullcontext():
                prepared = await conn.prepare(statement.sql)
        except asyncpg.AmbiguousParameterError:
            probe = await conn.prepare(NULL_TEST.sub("TRUE", statement.sql))
            types = tuple(t.name for t in probe.get_parameters())
            sql = NULL_TEST.sub(
                lambda m: f"{m.group(1)}::pg_catalog.{types[int(m.group(1)[1:]) - 1]} IS {m.group(2) or ''}NULL",
                statement.sql,
            )
            self.statements[query] = Statement(sql, statement.names)
            prepared = await conn.prepare(sql)
        return tuple(t.name for t in prepared.get_parameters())

    async def fetch_all(self, query: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        async with self._connection() as conn:
            args = await self._args(conn, query, params)
            return dicts(await conn.fetch(self.statements[query].sql, *args))

    async def fetch_one(self, query: str, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.fetch_all(query, params)
        return rows[0] if rows else None

    async def execute(self, query: str, params: Mapping[str, Any] | None = None) -> int:
        async with self._connection() as conn:
            args = await self._args(conn, query, params)
            status = await conn.execute(self.statements[query].sql, *args)
        return rowcount(status)

    async def execute_many(self, query: str, rows: Iterable[Mapping[str, Any]]) -> None:
        async with self.transaction(), self._connection() as conn:
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(await self._args(conn, query, row))
            if batch:
                await conn.executemany(self.statements[query].sql, batch)

    async def stream(
        self, query: str, params: Mapping[str, Any] | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[Row]]:
        # a server-side cursor lives in a transaction: the caller's, or a read-only one of its own
        current = _in_transaction.get()
        if current is not None and current[0] is self:
            async for rows in self._cursor(current[1], query, params, chunk):
                yield rows
            return
        async with self._lent() as conn, conn.transaction(readonly=True):
            async for rows in self._cursor(conn, query, params, chunk):
                yield rows

    async def _cursor(
        self, conn: asyncpg.Connection, query: str, params: Mapping[str, Any] | None, chunk: int
    ) -> AsyncIterator[list[Row]]:
        args = await self._args(conn, query, params)
        cursor = await conn.cursor(self.statements[query].sql, *args)
        while True:
            rows = await cursor.fetch(chunk)
            if not rows:
                return
            yield dicts(rows)

    async def refresh_statistics(self, table: str) -> None:
        """ANALYZE ``table`` once it has more than doubled since its statistics were taken (or has none).

        A prepared statement keeps the plan made for the table as the planner saw it then, until something
        changes the table's catalog row. The workers' claims are prepared while the queue is empty, planned for an
        empty deliveries table: the claimed rows joined to it by a nested loop over a sequential scan of the
        whole table, once per claimed row, which took 0.5 to 0.8 s a claim of 100 once a fan-out had put 20,000
        deliveries in. ANALYZE both corrects the estimates and changes that row, so every session plans its
        statements again; run in the fan-out chunk's transaction, it does so from the commit that shows the
        rows (run after it, the claims in between took up to a second each). Autovacuum would analyze too, but
        up to a minute later, and never where it is off. Doubling keeps the ANALYZEs of a long fan-out few (each
        reads a sample of at most 30,000 rows); a table grown less than that keeps plans made for its size.
        SKIP_LOCKED: where a VACUUM or another fan-out's ANALYZE holds the table, this chunk does not wait for it
        (an anti-wraparound vacuum can take hours) and a later chunk analyzes instead (the vacuum or the other
        ANALYZE changes the catalog row too). Without the right to analyze the table, the server warns and skips
        it."""
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        async with self._connection() as conn:
            outgrown = await conn.fetchval(
                "SELECT pg_relation_size(c.oid) > 2 * c.relpages::bigint * current_setting('block_size')::bigint"
                " FROM pg_class c WHERE c.oid = to_regclass($1)",
                table,
            )
            if outgrown:
                await conn.execute(f"ANALYZE (SKIP_LOCKED) {table}")

    async def copy_records(self, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]) -> int:
        """COPY rows into a table (inside the transaction in progress, if any); the number copied."""
        async with self._connection() as conn:
            status = await conn.copy_records_to_table(table, columns=list(columns), records=records)
        return rowcount(status)


BYTEWISE_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8", "C.UTF8"}


async def _check_collation(conn: asyncpg.Connection) -> None:
    """ConfigError unless the database compares text byte by byte, as SQLite does: the shared queries find the
    areas under a code with ``code >= :area AND code < :area || ':'`` and sort RFC 3339 text as time, which a
    language's collation (en_US, zh_CN) would reorder."""
    row = await conn.fetchrow(
        "SELECT to_jsonb(d) ->> 'datcollate' AS collate, COALESCE(to_jsonb(d) ->> 'datlocprovider', 'c') AS provider"
        " FROM pg_database d WHERE datname = current_database()"
    )
    if row["provider"] != "c" or row["collate"] not in BYTEWISE_COLLATIONS:
        raise ConfigError(
            f"{DATABASE_SETTING}: the PostgreSQL database's collation is {row['collate']} ({row['provider']});"
            " notifier needs text compared byte by byte: create it with TEMPLATE template0 LC_COLLATE 'C.UTF-8'"
            " LC_CTYPE 'C.UTF-8' (docs/storage.md)"
        )
