"""The command line, run as a real subprocess against a real database file."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.store import Store
from tests.conftest import TOWN_A


async def run_cli(
    *args: str, db_url: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}, **(env or {})}
    if db_url:
        env["NOTIFIER_DATABASE__URL"] = db_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notifier",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["worker"],
        ["migrate"],
        ["subscribers", "import"],
        ["apikey", "create"],
        ["apikey", "list"],
        ["apikey", "revoke"],
        ["notices", "send"],
        ["staff", "create"],
        ["staff", "list"],
        ["staff", "disable"],
        ["staff", "reset-password"],
    ],
)
async def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = await run_cli(*command, "--help")
    assert code == 0 and "usage: notifier" in out


async def test_migrate_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    code, out, _ = await run_cli("migrate", db_url=url)
    assert code == 0 and "sqlite_001_initial.sql" in out
    code, out, _ = await run_cli("migrate", db_url=url)
    assert code == 0 and "up to date" in out


async def test_apikey_create_prints_key_alone_on_last_line(store: Store, settings: Settings) -> None:
    code, out, err = await run_cli(
        "apikey", "create", "--department", "environment", "--role", "issuer", db_url=settings.database.url
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert " " not in key
    info = await store.authenticate(key)
    assert info is not None and info.department == "environment" and info.role == "issuer"
    rows = await store.db.fetch_all("get_api_key_by_prefix", {"prefix": key.split("_")[1]})
    assert rows and key not in str(rows)  # only the hash is stored


async def test_apikey_for_unknown_department_fails_clearly(store: Store, settings: Settings) -> None:
    code, _, err = await run_cli(
        "apikey", "create", "--department", "nowhere", "--role", "issuer", db_url=settings.database.url
    )
    assert code == 2 and "no department nowhere" in err


async def test_notices_send_follows_api_rules(store: Store, settings: Settings) -> None:
    _, issuer = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
    _, approver = await store.create_api_key(department="environment", role=Role.APPROVER, name="a", actor="t")
    base = [
        "notices",
        "send",
        "--api-key",
        issuer,
        "--title",
        "空气质量提示",
        "--body",
        "今日空气轻度污染",
        "--area",
        TOWN_A,
    ]
    code, out, err = await run_cli(*base, "--topic", "air-quality", db_url=settings.database.url)
    assert code == 0, err
    notice_id = int(out.split()[1].rstrip(":"))
    assert "pending_approval" in out
    code, _, err = await run_cli(*base, "--topic", "disaster-relief", db_url=settings.database.url)
    assert code == 2 and "may not issue on topic disaster-relief" in err
    code, _, err = await run_cli(*base, "--topic", "air-quality", "--severity", "awful", db_url=settings.database.url)
    assert code == 2 and "severity" in err
    code, _, err = await run_cli(
        "notices", "approve", str(notice_id), "--api-key", issuer, db_url=settings.database.url
    )
    assert code == 2 and "approver" in err
    code, out, err = await run_cli(
        "notices", "approve", str(notice_id), "--api-key", approver, db_url=settings.database.url
    )
    assert code == 0 and "approved" in out, err


async def test_bad_config_stops_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = -1\n", encoding="utf-8")
    code, _, err = await run_cli("migrate", "--config", str(config))
    assert code == 2
    assert f"server.port ({config}:2): Input should be greater than or equal to 0" in err
