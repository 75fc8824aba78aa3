"""Start-up refuses a signing secret anyone could know: unsubscribe links must not be forgeable."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from notifier import config
from notifier.config import load_settings
from notifier.domain.errors import ConfigError
from notifier.signing import UnsubscribeLinks, read_unsubscribe

ROOT = Path(__file__).resolve().parent.parent
SETTING = "[security] signing_secret"
ENV_VAR = "NOTIFIER_SECURITY__SIGNING_SECRET"
EXAMPLE_SECRET = "change-me-in-production"  # what config.example.toml and the built-in default hold


async def start(*args: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier", *args, cwd=cwd, env={**clean, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def refused(*args: str, cwd: Path, env: dict[str, str]) -> str:
    """Run a command that must stop by itself with exit code 2; its stderr."""
    process = await start(*args, cwd=cwd, env=env)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"notifier {' '.join(args)} started instead of refusing the signing secret")
    assert process.returncode == 2, err.decode()
    return err.decode()


def example_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.example.toml", config)
    return config


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
@pytest.mark.parametrize(
    ("secret", "problem"),
    [(None, "the example value"), ("", "empty"), ("short-secret-123", "shorter than 32 characters")],
)
async def test_start_with_a_guessable_secret_stops_with_one_clear_line(
    tmp_path: Path, command: list[str], secret: str | None, problem: str
) -> None:
    env = {"NOTIFIER_DATABASE__URL": f"sqlite:///{tmp_path}/n.db"}
    if secret is not None:
        env[ENV_VAR] = f'"{secret}"'
    err = await refused(*command, "--config", str(example_config(tmp_path)), cwd=tmp_path, env=env)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert SETTING in lines[0] and ENV_VAR in lines[0] and problem in lines[0]
    assert not (tmp_path / "n.db").exists()  # refused before any work


def test_the_example_secret_forges_tokens_so_it_is_refused() -> None:
    """Why: with the published secret anyone can sign a valid unsubscribe token for any resident id."""
    settings = load_settings(ROOT / "config.example.toml", environ={})
    forged = UnsubscribeLinks("http://x", SecretStr(EXAMPLE_SECRET)).url(subscriber_id=17, channel="sms")
    token = forged.split("token=")[1]
    assert read_unsubscribe(token, settings.security.signing_secret).subscriber_id == 17
    with pytest.raises(ConfigError, match=re.escape(SETTING)):
        config.require_signing_secret(settings)


def test_demo_accepts_the_example_secret_but_not_an_empty_one() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    config.require_signing_secret(settings, demo=True)
    empty = load_settings(ROOT / "config.example.toml", environ={ENV_VAR: '""'})
    with pytest.raises(ConfigError, match="empty"):
        config.require_signing_secret(empty, demo=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_demo_serves_with_the_example_config(tmp_path: Path) -> None:
    port = free_port()
    env = {"NOTIFIER_DATABASE__URL": f"sqlite:///{tmp_path}/n.db", "NOTIFIER_ENGINE__WORKERS": "0"}
    config = example_config(tmp_path)
    process = await start("serve", "--demo", "--config", str(config), "--port", str(port), cwd=tmp_path, env=env)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # until the server answers, or the process ended by itself
                assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("notifier serve --demo did not answer")
    finally:
        process.terminate()
        await process.communicate()


def test_demo_config_script_writes_a_fresh_random_secret(tmp_path: Path) -> None:
    secrets = []
    for name in ("a", "b"):
        target = tmp_path / name / "config.toml"
        target.parent.mkdir()
        subprocess.run(["bash", str(ROOT / "scripts" / "demo-config"), str(target)], check=True, timeout=60)
        settings = load_settings(target, environ={})
        config.require_signing_secret(settings)  # good enough outside --demo too
        secrets.append(settings.security.signing_secret.get_secret_value())
        example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
        assert target.read_text(encoding="utf-8") == example.replace(EXAMPLE_SECRET, secrets[-1])
        assert target.stat().st_mode & 0o077 == 0  # it holds a secret: only its owner reads it
    assert secrets[0] != secrets[1]


def test_demo_config_script_keeps_an_existing_config(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("[server]\nport = 9000\n", encoding="utf-8")
    subprocess.run(["bash", str(ROOT / "scripts" / "demo-config"), str(target)], check=True, timeout=60)
    assert target.read_text(encoding="utf-8") == "[server]\nport = 9000\n"


def test_serve_demo_writes_its_config_with_the_demo_config_script() -> None:
    script = (ROOT / "scripts" / "serve-demo").read_text(encoding="utf-8")
    assert "cp config.example.toml" not in script
    assert re.search(r"^bash scripts/demo-config config\.toml$", script, re.MULTILINE)
