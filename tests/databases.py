"""The database a test runs on: SQLite in its temporary directory, or PostgreSQL.

``NOTIFIER_TEST_DB=postgres`` (or ``pytest --db=postgres``) runs the ``store`` and ``settings`` fixtures (and
every fixture built on :func:`database_url`) on PostgreSQL at ``NOTIFIER_TEST_PG_DSN``. The run migrates one
template database once, and each test gets its own copy (``CREATE DATABASE ... TEMPLATE``, a file copy on the
server, far cheaper than migrating), made ahead while earlier tests run and dropped behind them when the test
ends; the template is dropped when the run ends.
Tests that need PostgreSQL whatever the setting use :func:`postgres_database` and are marked
``@pytest.mark.peer("postgres")``: they skip when no server answers, which CI turns into a failure; with
``NOTIFIER_REQUIRE_PEERS=1`` a store fixture that cannot reach PostgreSQL fails instead of skipping too.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

if TYPE_CHECKING:
    from notifier.store.database import Database

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def peers_required() -> bool:
    """tests.peers' switch (not imported from there: this module loads before the plugin is registered)."""
    return os.environ.get("NOTIFIER_REQUIRE_PEERS") == "1"
T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgres"),
        default=None,
        help="the database the store fixtures use (default: NOTIFIER_TEST_DB, else sqlite)",
    )
    parser.addoption(
        "--record-database-tests",
        metavar="FILE",
        help="write to FILE the ids of the tests that opened the run's database (tests.databases.database_url)",
    )
    parser.addoption(
        "--only-database-tests",
        metavar="FILE",
        help="run only the tests FILE names (written by --record-database-tests); deselect the others",
    )


_chosen: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    _chosen.append(config.getoption("--db") or os.environ.get("NOTIFIER_TEST_DB") or "sqlite")


def pytest_unconfigure(config: pytest.Config) -> None:
    _chosen.pop()  # a run inside this one (pytester) leaves the outer run's choice in place


def on_postgres() -> bool:
    """Whether this run's store fixtures use PostgreSQL."""
    return bool(_chosen) and _chosen[-1] == "postgres"


def admin_dsn() -> str:
    return os.environ.get("NOTIFIER_TEST_PG_DSN") or DEFAULT_DSN


def dsn_for(database: str) -> str:
    parts = urlsplit(admin_dsn())
    return urlunsplit(parts._replace(path=f"/{database}"))


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end from synchronous code, even inside a running event loop (in a thread)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class PostgresDatabases:
    """The run's template database and the per-test copies.

    Copying and dropping a database take a second or two each on a busy server, so one thread keeps the next
    copies ready while tests run, and another drops the used ones behind them. A drop waits for a checkpoint
    (1.8 s each on the loaded CI machine); drops issued together share one, so the dropper takes every used
    copy that has piled up and drops them side by side (nine in 0.6 s).
    """

    DROPS_AT_ONCE = 8

    AHEAD = 2  # copies kept ready

    def __init__(self) -> None:
        self.prefix = f"notifier_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.template: str | None = None
        self.unavailable: str | None = None
        self.created: list[str] = []  # handed to the running test
        self.counter = itertools.count(1)
        self.ready: collections.deque[Future[str]] = collections.deque()
        self.maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-db-copies")
        self.dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-db-drops")
        self.dropping: list[Future[None]] = []
        self.used: list[str] = []  # waiting for the dropper
        self.used_lock = threading.Lock()

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(admin_dsn(), timeout=10)

    def _ensure_template(self) -> str:
        if self.unavailable is not None:
            if peers_required():
                raise RuntimeError(self.unavailable)
            pytest.skip(self.unavailable)
        if self.template is not None:
            return self.template
        name = f"{self.prefix}_template"

        async def build() -> None:
            from notifier.store.postgres import PostgresDatabase

            admin = await self._admin()
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            db = PostgresDatabase(dsn_for(name), max_size=2)
            await db.connect()
            try:
                await db.migrate()
            finally:
                await db.close()

        try:
            run_sync(build)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.unavailable = f"PostgreSQL at NOTIFIER_TEST_PG_DSN is not available: {exc}"
            if peers_required():  # CI installs PostgreSQL: a run that cannot reach it must fail, not skip
                raise RuntimeError(self.unavailable) from exc
            pytest.skip(self.unavailable)
        self.template = name
        return name

    def _create(self, template: str | None) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        source = f' TEMPLATE "{template}"' if template else ""

        async def create() -> None:
            admin = await self._admin()
            try:
                await admin.execute(f'CREATE DATABASE "{name}"{source}')
            finally:
                await admin.close()

        asyncio.run(create())
        return name

    def new_database(self, *, migrated: bool = True) -> str:
        """The URL of a fresh database, a copy of the migrated template (or empty); dropped after the test."""
        template = self._ensure_template()
        if migrated:
            while len(self.ready) < self.AHEAD + 1:
                self.ready.append(self.maker.submit(self._create, template))
            name = self.ready.popleft().result()
        else:
            name = self.maker.submit(self._create, None).result()
        self.created.append(name)
        return dsn_for(name)

    def _drop_used(self) -> None:
        with self.used_lock:
            names, self.used = self.used, []

        async def drop(name: str, admin: asyncpg.Connection) -> None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        async def drop_all() -> None:
            for start in range(0, len(names), self.DROPS_AT_ONCE):
                batch = names[start : start + self.DROPS_AT_ONCE]
                admins = [await self._admin() for _ in batch]
                try:
                    await asyncio.gather(*(drop(name, admin) for name, admin in zip(batch, admins, strict=True)))
                finally:
                    for admin in admins:
                        await admin.close()

        if names:
            asyncio.run(drop_all())

    def _drop(self, names: list[str]) -> None:
        """Hand ``names`` to the dropper, which drops them with any others used by then."""
        with self.used_lock:
            self.used.extend(names)
        self.dropping.append(self.dropper.submit(self._drop_used))

    def drop_created(self) -> None:
        """Drop the running test's databases, behind the next tests."""
        names, self.created = self.created, []
        if names:
            self._drop(names)

    def finish(self) -> None:
        """At the end of the run: drop every copy (ready or used) and the template, and wait for it."""
        self.drop_created()
        spare = [future.result() for future in self.ready]
        self.ready.clear()
        if self.template is not None:
            spare.append(self.template)
            self.template = None
        if spare:
            self._drop(spare)
        for future in self.dropping:
            future.result()
        self.maker.shutdown()
        self.dropper.shutdown()


DATABASES = PostgresDatabases()


def postgres_database(*, migrated: bool = True) -> str:
    """A fresh PostgreSQL database for this test, migrated or empty (skips when no server answers)."""
    return DATABASES.new_database(migrated=migrated)


_sqlite_template: list[Path] = []  # this process's migrated SQLite file, once made


async def _migrated_sqlite_template() -> Path:
    """A SQLite file holding every migration and nothing else, made once a process (see ``open_migrated``)."""
    if not _sqlite_template or not _sqlite_template[0].exists():
        from notifier.store import open_database

        _sqlite_template.clear()
        folder = Path(tempfile.mkdtemp(prefix="notifier-template-"))
        db = await open_database(f"sqlite:///{folder}/template.db")
        try:
            await db.migrate()
        finally:
            await db.close()  # the last connection's close folds the WAL into the file
        _sqlite_template.append(folder / "template.db")
    return _sqlite_template[0]


def _copy_if_new(template: Path, path: Path) -> None:
    if not path.exists():
        shutil.copyfile(template, path)


async def open_migrated(url: str) -> Database:
    """The database at ``url``, open and migrated: what ``open_database(url)`` and ``migrate()`` make, for less.

    Migrating a new SQLite file costs about 60 ms of processor time and a few hundred milliseconds of disk
    syncs, and most tests start from one; a new file here starts as a copy of this process's migrated template
    instead (PostgreSQL test databases are copies of a migrated template already). ``migrate()`` still runs and
    finds nothing to do.
    """
    from notifier.store import open_database

    if url.startswith("sqlite:////"):
        await asyncio.to_thread(_copy_if_new, await _migrated_sqlite_template(), Path(url.removeprefix("sqlite:///")))
    db = await open_database(url)
    try:
        await db.migrate()
    except BaseException:
        await db.close()
        raise
    return db


_named: dict[tuple[Path, str], str] = {}  # this test's PostgreSQL copies by the SQLite file they stand for
_opened: list[bool] = []  # whether the running test asked for the run's database
_database_tests: list[str] = []  # the ids of the tests that did (--record-database-tests)


def database_url(tmp_path: Path, name: str = "notifier.db") -> str:
    """The database URL a test's settings use: SQLite at ``tmp_path/name``, or a PostgreSQL copy (see above).

    The same ``tmp_path`` and ``name`` give the same database within a test, as the same file would."""
    _opened[:] = [True]
    if on_postgres():
        key = (tmp_path, name)
        if key not in _named:
            _named[key] = postgres_database()
        return _named[key]
    return f"sqlite:///{tmp_path}/{name}"


@pytest.fixture(autouse=True)
def _drop_test_databases(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    _opened.clear()
    yield
    if _opened:
        _database_tests.append(request.node.nodeid)
    _named.clear()
    DATABASES.drop_created()


SQLITE_ONLY = "SQLite only: "  # the reason's prefix, which tests.peers does not count as a missing peer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--only-database-tests``, deselect the tests its file does not name. On PostgreSQL, skip the tests
    marked ``@pytest.mark.sqlite_only("why")``, saying why."""
    listed = config.getoption("--only-database-tests", None)
    if listed:
        wanted = set(Path(listed).read_text(encoding="utf-8").splitlines())
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
        items[:] = [item for item in items if item.nodeid in wanted]
    if not on_postgres():
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=SQLITE_ONLY + marker.args[0]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the ``--record-database-tests`` file. Under pytest-xdist (``-n``) each worker hands its ids to the
    controller (``workeroutput``, read in :func:`pytest_testnodedown`), which writes the file for them all."""
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["database_tests"] = list(_database_tests)
    else:
        record = config.getoption("--record-database-tests", None)
        if record:
            Path(record).write_text("".join(f"{nodeid}\n" for nodeid in _database_tests), encoding="utf-8")
    DATABASES.finish()
    for template in _sqlite_template:
        shutil.rmtree(template.parent, ignore_errors=True)
    _sqlite_template.clear()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's hook on the controller: a worker finished; keep the ids of its database tests."""
    _database_tests.extend(getattr(node, "workeroutput", {}).get("database_tests", ()))


async def run_sql(db: Any, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Plain SQL with ``?`` placeholders on a test's database, whichever dialect: what a test reads or breaks
    behind the store's back. A write commits at once."""
    from notifier.store.postgres import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        numbers = itertools.count(1)
        numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
        async with db.pool.acquire() as conn:
            return [dict(row) for row in await conn.fetch(numbered, *params)]
    cursor = await db.writer.execute(sql, tuple(params))
    return [dict(row) for row in await cursor.fetchall()]


def url_of(db: Any) -> str:
    """The ``[database] url`` of a test's open database (for a command-line run against the same data)."""
    from notifier.store.postgres import PostgresDatabase

    return db.dsn if isinstance(db, PostgresDatabase) else f"sqlite:///{db.path}"


async def read_rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of plain SQL (``?`` placeholders) read from the database at ``url`` by a connection of its own,
    whichever dialect: what a test checks behind the service's back."""
    if url.startswith("sqlite:///"):
        import sqlite3

        def read() -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()

        return await asyncio.to_thread(read)
    numbers = itertools.count(1)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(row) for row in await conn.fetch(re.sub(r"\?", lambda _: f"${next(numbers)}", sql), *params)]
    finally:
        await conn.close()
