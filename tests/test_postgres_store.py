"""The PostgreSQL database itself: migrations (serialized, rerun harmlessly), the append-only audit log and its
single chain under concurrent writers, joined transactions, streaming, and the values it hands back."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import pytest

from notifier.domain.errors import ConfigError
from notifier.store import Store, open_database
from notifier.store.audit import AuditFilter
from notifier.store.postgres import PostgresDatabase
from notifier.store.postgres_values import dicts
from notifier.store.queries import migrations
from tests.conftest import seed_catalog
from tests.databases import admin_dsn, dsn_for, postgres_database

pytestmark = pytest.mark.peer("postgres")


async def test_migrations_run_from_empty_and_rerun_harmlessly() -> None:
    url = postgres_database(migrated=False)
    db = await open_database(url)
    try:
        applied = await db.migrate()
        assert applied == [name for _, name, _ in migrations("postgres")]
        assert applied[0] == "postgres_001_initial.sql"
        assert await db.migrate() == []
    finally:
        await db.close()


async def test_concurrent_migrations_apply_each_version_once() -> None:
    """Two processes starting together (two pools here) both finish; the second finds nothing left to do."""
    url = postgres_database(migrated=False)
    first, second = PostgresDatabase(url), PostgresDatabase(url)
    await first.connect()
    await second.connect()
    try:
        results = await asyncio.gather(first.migrate(), second.migrate())
    finally:
        await first.close()
        await second.close()
    assert sorted(len(r) for r in results) == [0, len(migrations("postgres"))]


async def test_a_missing_lower_migration_is_applied_after_a_higher_one() -> None:
    url = postgres_database()
    db = await open_database(url)
    assert isinstance(db, PostgresDatabase)
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("DROP TABLE hook_nonces; DELETE FROM schema_version WHERE version = 9")
        assert await db.migrate() == ["postgres_009_hook_nonces.sql"]
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT COUNT(*) FROM hook_nonces") == 0
    finally:
        await db.close()


@pytest.fixture
async def pg_store() -> Store:
    db = await open_database(postgres_database())
    store = Store(db)
    await seed_catalog(store)
    yield store  # type: ignore[misc]
    await db.close()


async def test_audit_log_is_append_only(pg_store: Store) -> None:
    db = pg_store.db
    assert isinstance(db, PostgresDatabase)
    await pg_store.audit("test", "thing.happen", "thing", 1, {"k": "v"})
    async with db.pool.acquire() as conn:
        for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement)
    rows = await db.fetch_all("list_audit", {"after": 0, "limit": 10})
    assert [r["action"] for r in rows] == ["thing.happen"]


async def test_concurrent_audit_writers_extend_one_chain(pg_store: Store) -> None:
    """Forty appends at once over a pool of ten connections: consecutive ids, one unbroken chain."""
    await asyncio.gather(*(pg_store.audit("test", "thing.happen", "thing", i) for i in range(40)))
    result = await pg_store.verify_audit_chain()
    assert result.broken is None, result
    ids = [row["id"] async for rows in pg_store.audit_rows(AuditFilter()) for row in rows]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 40


async def test_a_nested_transaction_joins_the_outer_one(pg_store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with pg_store.db.transaction():
            await pg_store.upsert_topic("water", "供水")
            async with pg_store.db.transaction():
                await pg_store.upsert_topic("roads", "道路")
            assert await pg_store.db.fetch_one("get_topic", {"code": "roads"}) is not None
            raise RuntimeError("boom")
    assert await pg_store.db.fetch_one("get_topic", {"code": "water"}) is None
    assert await pg_store.db.fetch_one("get_topic", {"code": "roads"}) is None


async def test_stream_reads_in_chunks(pg_store: Store) -> None:
    chunks = [rows async for rows in pg_store.db.stream("list_areas", {}, chunk=2)]
    assert [len(c) for c in chunks] == [2, 2, 2]
    assert [r["code"] for c in chunks for r in c] == sorted(r["code"] for c in chunks for r in c)


async def test_values_come_back_as_sqlite_gives_them(pg_store: Store) -> None:
    """Booleans of comparisons summed are integers, numeric results are int or float, never Decimal."""
    db = pg_store.db
    assert isinstance(db, PostgresDatabase)
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT SUM(x > 1) AS n, SUM(x::numeric) AS total, AVG(x) AS mean "
                                  "FROM (VALUES (1), (2), (4)) AS v (x)")
    assert row["n"] == 2 and type(row["n"]) is int
    assert row["total"] == 7 and type(row["total"]) is int
    assert row["mean"] == pytest.approx(7 / 3) and type(row["mean"]) is float


async def test_rows_are_thedicts_the_records_make(pg_store: Store) -> None:
    """``dicts`` (each result's rows as dicts, cheaper than ``dict(record)``) gives exactly what ``dict(record)``
    gives: keys in the columns' order, a name two columns share keeping the later value, one column, none."""
    db = pg_store.db
    assert isinstance(db, PostgresDatabase)
    queries = [
        "SELECT x AS id, 'n' || x AS name, NULL::text AS gone, x > 1 AS big, '{\"a\": [1]}'::jsonb AS doc, "
        "x AS dup, -x AS dup FROM (VALUES (1), (2), (3)) AS v (x)",
        "SELECT x AS only FROM (VALUES (1), (2)) AS v (x)",
        "SELECT FROM (VALUES (1), (2)) AS v (x)",
        "SELECT 1 AS one WHERE false",
    ]
    async with db.pool.acquire() as conn:
        for query in queries:
            records = await conn.fetch(query)
            expected = [dict(record) for record in records]
            for _ in range(2):  # the row maker made, then the one kept for these names
                rows = dicts(records)
                assert rows == expected and [list(row) for row in rows] == [list(row) for row in expected], query


async def test_a_database_with_a_language_collation_is_refused() -> None:
    """Under a language's collation ':' does not sort after the digits, so ``code < :area || ':'`` would miss
    areas; migrate refuses such a database in one line instead of answering wrongly later."""
    name = f"notifier_icu_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_dsn())
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en'")
        db = PostgresDatabase(dsn_for(name))
        await db.connect()
        try:
            with pytest.raises(ConfigError, match=r"collation .*LC_COLLATE .C\.UTF-8"):
                await db.migrate()
        finally:
            await db.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def last_statement_of(db: PostgresDatabase, pid: int) -> str:
    conn = await asyncpg.connect(db.dsn)
    try:
        return str(await conn.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await conn.close()


async def test_a_named_statement_costs_no_reset_round_trip() -> None:
    """asyncpg resets a connection it takes back with a query of its own; after a named statement or a
    transaction of them there is nothing to reset, so the statement is the connection's last."""
    db = PostgresDatabase(postgres_database(), min_size=1, max_size=1)
    await db.connect()
    try:
        async with db.pool.acquire() as conn:
            pid = conn.get_server_pid()
        await db.fetch_all("list_areas", {})
        assert "FROM areas" in await last_statement_of(db, pid)
        async with db.transaction():
            await db.fetch_all("list_areas", {})
        assert await last_statement_of(db, pid) == "COMMIT;"
    finally:
        await db.close()


async def test_a_connection_lent_outside_the_named_statements_is_reset() -> None:
    """Session state set over ``pool.acquire`` (here a setting) does not outlive the lending, even on a
    connection the named statements used before."""
    db = PostgresDatabase(postgres_database(), min_size=1, max_size=1)
    await db.connect()
    try:
        await db.fetch_all("list_areas", {})
        async with db.pool.acquire() as conn:
            await conn.execute("SET statement_timeout = '7s'")
        await db.fetch_all("list_areas", {})
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SHOW statement_timeout") == "0"
    finally:
        await db.close()


async def fan_out_sms_notice(url: str) -> None:
    """One approved SMS notice to every resident of the database at ``url``, fanned out to the end."""
    from bench.fanout import NOTICE
    from notifier.domain.enums import NoticeState
    from notifier.domain.models import NoticeIn
    from notifier.engine.context import EngineContext
    from notifier.engine.fanout import fan_out_next
    from notifier.testing import RecordingChannel
    from tests.engine.conftest import make_settings

    db = await open_database(url)
    store = Store(db)
    try:
        notice, _ = await store.create_notice(
            NoticeIn.model_validate({**NOTICE, "channels": ["sms"]}), department="environment", created_by=None,
            actor="test",
        )  # fmt: skip
        await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
        settings = make_settings(Path("unused"))
        settings.database.url = url
        ctx = EngineContext(store, settings, {alias: RecordingChannel(alias) for alias in settings.channels})
        while await fan_out_next(ctx) is not None:
            pass
    finally:
        await db.close()


async def test_a_claim_takes_no_more_rows_than_its_limit_whatever_the_plan() -> None:
    """The claim picks its rows once. Written as ``WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``,
    a plan that rescans the subquery (a nested-loop semi join, which the planner chose in the SMS benchmark)
    locked the next rows on each rescan, as the ones it had just updated were no longer queued: a claim of
    100 took 958. The planner is pushed to that plan here, for the database, by turning the others off."""
    from bench.population import populate_postgres

    url = postgres_database()
    await populate_postgres(url, 300)
    await fan_out_sms_notice(url)
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_dsn())
    try:
        for setting in ("enable_hashagg", "enable_hashjoin", "enable_mergejoin", "enable_material", "enable_sort"):
            await admin.execute(f'ALTER DATABASE "{name}" SET {setting} = off')
    finally:
        await admin.close()
    db = await open_database(url)  # new connections, which take the database's settings
    try:
        store = Store(db)
        claimed = await store.claim_deliveries("sms-main", "worker-1", 2e9, 60, 10)
        direct = await store.claim_direct_messages("sms-main", "worker-1", 2e9, 60, 10)
    finally:
        await db.close()
    assert len(claimed) == 10
    assert direct == []


async def test_a_claim_planned_on_the_empty_queue_is_planned_again_after_a_fan_out() -> None:
    """A worker prepares its claim while the queue is empty, and the server keeps the plan made for an empty
    deliveries table: the claimed rows joined to the table by a nested loop over a sequential scan of it, once
    per claimed row, 0.5 to 0.8 s a claim of 100 once a fan-out had put 20,000 deliveries in.
    The fan-out ANALYZEs the table it outgrew, which makes every session plan its statements again. Here the
    worker's session keeps one generic plan (``force_generic_plan``, as the server chooses after five runs).
    The same check holds the claim to finding its picked rows by primary key: joined to its CTE, it was planned
    over a sequential scan of deliveries even with fresh statistics, at this size."""
    from bench.population import populate_postgres

    url = postgres_database()
    await populate_postgres(url, 3000)  # ANALYZEs every table: deliveries is known to be empty
    sql = PostgresDatabase(url).statements["claim_deliveries"]
    values = {"alias": "'sms-main'", "worker": "'worker-1'", "now": "2e9", "now_iso": "'2033-05-18T03:33:20+00:00'",
              "lease_until": "2e9 + 60", "limit": "100"}  # fmt: skip
    execute = f"EXECUTE claim({', '.join(values[name] for name in sql.names)})"
    worker = await asyncpg.connect(url)
    try:
        await worker.execute("SET plan_cache_mode = force_generic_plan")
        await worker.execute(f"PREPARE claim AS {sql.sql}")
        async with worker.transaction():
            assert await worker.fetch(execute) == []
        await fan_out_sms_notice(url)
        assert await worker.fetchval("SELECT COUNT(*) FROM deliveries WHERE state = 'queued'") == 3000
        plan = "\n".join(row[0] for row in await worker.fetch(f"EXPLAIN {execute}"))
    finally:
        await worker.close()
    # kept, that plan read every delivery for each claim (a sequential scan to pick the rows, and one to find them
    # again by id, or a nested loop over one per claimed row as the claim was written before)
    assert "Seq Scan on deliveries" not in plan, plan


async def test_a_claimed_delivery_stays_on_its_page() -> None:
    """A claim's updates are not HOT (state is in the partial indexes' predicates), so each new version needs room:
    on a full page it went to another one, the server writing a lock record for the old version first and dirtying
    two pages (1.8 of the 2.8 lock records a message in the SMS benchmark). Deliveries' pages are filled to half
    (migration 031), so a claim of whole pages keeps every row on its page."""
    from bench.population import populate_postgres

    url = postgres_database()
    await populate_postgres(url, 300)
    await fan_out_sms_notice(url)
    page = "SELECT id, (ctid::text::point)[0]::bigint AS page FROM deliveries"
    conn = await asyncpg.connect(url)
    try:
        before = dict(await conn.fetch(page))
        db = await open_database(url)
        try:
            claimed = await Store(db).claim_deliveries("sms-main", "worker-1", 2e9, 60, 100)
        finally:
            await db.close()
        after = dict(await conn.fetch(page))
    finally:
        await conn.close()
    assert len(claimed) == 100 and len(before) == 300
    moved = [row["id"] for row in claimed if after[row["id"]] != before[row["id"]]]
    assert moved == []
