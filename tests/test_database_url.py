"""A ``[database] url`` that cannot give a database: one line naming the setting, exit code 2, no traceback."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.databases import admin_dsn, postgres_database
from tests.test_cli import run_cli

SETTING_NAMES = ("[database] url", "NOTIFIER_DATABASE__URL")


def refused_urls(tmp_path: Path) -> dict[str, str]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    return {
        "missing directory": f"sqlite:///{tmp_path}/no-such-dir/notifier.db",
        "parent is a file": f"sqlite:///{a_file}/notifier.db",
        "directory not writable": "sqlite:////proc/notifier.db",
        "empty path": "sqlite:///",
        "malformed": "sqlite:/notifier.db",
        "unknown scheme": "mysql://root@127.0.0.1/notifier",
        "postgresql unreachable": "postgresql://postgres:s3cret-pw@127.0.0.1:1/test",
        "postgresql bad url": "postgresql://postgres:s3cret-pw@127.0.0.1:notaport/test",
    }


def refused_postgres_urls() -> dict[str, str]:
    """URLs that reach the test server (NOTIFIER_TEST_PG_DSN) but cannot give a database."""
    parts = urlsplit(admin_dsn())
    host = f"{parts.hostname}:{parts.port or 5432}"
    return {
        "unknown user": f"postgresql://no_such_role_{secrets.token_hex(3)}:s3cret-pw@{host}/test",
        "missing database": f"postgresql://{parts.username}:s3cret-pw@{host}/no_such_db_{secrets.token_hex(3)}",
    }


def assert_one_line_naming_the_setting(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "database" in lines[0] and ("url" in lines[0] or "URL" in lines[0]), err
    assert "NOTIFIER_DATABASE__URL" in lines[0] or "[database] url" in lines[0], err
    return lines[0]


@pytest.mark.parametrize(
    "case",
    [
        "missing directory",
        "parent is a file",
        "directory not writable",
        "empty path",
        "malformed",
        "unknown scheme",
        "postgresql unreachable",
        "postgresql bad url",
    ],
)
async def test_migrate_with_a_bad_database_url(tmp_path: Path, case: str) -> None:
    url = refused_urls(tmp_path)[case]
    code, out, err = await run_cli("migrate", db_url=url, cwd=tmp_path)
    line = assert_one_line_naming_the_setting(code, err)
    assert "applied" not in out
    if case == "missing directory":
        assert not (tmp_path / "no-such-dir").exists()
    if case == "postgresql unreachable":
        assert "PostgreSQL" in line and "127.0.0.1:1/test" in line and "reach" in line
    assert "s3cret-pw" not in line


@pytest.mark.peer("postgres")
@pytest.mark.parametrize("case", ["unknown user", "missing database"])
async def test_migrate_with_a_refused_postgres_url(tmp_path: Path, case: str) -> None:
    url = refused_postgres_urls()[case]
    await assert_server_answers()
    code, out, err = await run_cli("migrate", db_url=url, cwd=tmp_path)
    line = assert_one_line_naming_the_setting(code, err)
    assert "applied" not in out
    assert "s3cret-pw" not in line and "PostgreSQL" in line
    assert ("login" in line) if case == "unknown user" else ("does not exist" in line)


async def assert_server_answers() -> None:
    try:
        conn = await asyncpg.connect(admin_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL at NOTIFIER_TEST_PG_DSN is not available: {exc}")
    await conn.close()


@pytest.mark.peer("postgres")
async def test_a_good_postgres_url_migrates(tmp_path: Path) -> None:
    url = postgres_database(migrated=False)
    code, out, err = await run_cli("migrate", db_url=url, cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("applied: postgres_001_initial.sql")


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
@pytest.mark.parametrize("case", ["missing directory", "postgresql unreachable"])
async def test_serve_and_worker_with_a_bad_database_url(tmp_path: Path, command: list[str], case: str) -> None:
    url = refused_urls(tmp_path)[case]
    env = {"NOTIFIER_SECURITY__SIGNING_SECRET": secrets.token_urlsafe(32), "NOTIFIER_SERVER__HOST": "127.0.0.1"}
    code, _, err = await run_cli(*command, db_url=url, cwd=tmp_path, env=env)
    assert_one_line_naming_the_setting(code, err)


async def test_a_good_sqlite_url_still_migrates(tmp_path: Path) -> None:
    code, out, err = await run_cli("migrate", db_url=f"sqlite:///{tmp_path}/notifier.db", cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("applied: ")
