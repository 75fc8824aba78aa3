"""A ``[database] url`` that cannot give a database: one line naming the setting, exit code 2, no traceback."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

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
        "postgresql": "postgresql://postgres@127.0.0.1:5432/test",
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
        "postgresql",
    ],
)
async def test_migrate_with_a_bad_database_url(tmp_path: Path, case: str) -> None:
    url = refused_urls(tmp_path)[case]
    code, out, err = await run_cli("migrate", db_url=url, cwd=tmp_path)
    line = assert_one_line_naming_the_setting(code, err)
    assert "applied" not in out
    if case == "missing directory":
        assert not (tmp_path / "no-such-dir").exists()
    if case == "postgresql":
        assert "PostgreSQL" in line and "not supported" in line
        assert "postgres@" not in line


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
@pytest.mark.parametrize("case", ["missing directory", "postgresql"])
async def test_serve_and_worker_with_a_bad_database_url(tmp_path: Path, command: list[str], case: str) -> None:
    url = refused_urls(tmp_path)[case]
    env = {"NOTIFIER_SECURITY__SIGNING_SECRET": secrets.token_urlsafe(32), "NOTIFIER_SERVER__HOST": "127.0.0.1"}
    code, _, err = await run_cli(*command, db_url=url, cwd=tmp_path, env=env)
    assert_one_line_naming_the_setting(code, err)


async def test_a_good_sqlite_url_still_migrates(tmp_path: Path) -> None:
    code, out, err = await run_cli("migrate", db_url=f"sqlite:///{tmp_path}/notifier.db", cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("applied: ")
