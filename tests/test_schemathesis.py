"""Hostile input in CI: schemathesis against the running service's own /openapi.json.

The real server (``notifier serve``, with its engine and the demo county) runs as a subprocess on a free
loopback port; schemathesis runs every operation through its examples, coverage, fuzzing and stateful
phases (links from created subscribers and notices to the operations taking their id), with a fixed seed
and a bounded number of cases (tests/fuzz/schemathesis.toml). Every check that compares the
service with its document is on: no 5xx, every status documented, the documented media type and body
schema, 405 with ``Allow`` for undeclared methods, refusal of data the schema forbids, and 401 when the key
is left out. Only "schema-valid data must be accepted" is off: an unknown topic is a correct 422.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notifier.demo import load_demo
from notifier.domain.enums import Role
from notifier.store import Store, open_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / "tests" / "fuzz" / "schemathesis.toml"
READY_WITHIN = 60.0  # seconds for the server to answer /healthz; a deadline for start-up, not a measurement


@dataclass
class Service:
    base_url: str
    admin_key: str
    spare_prefix: str
    hook_token: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, port: int, hook_token: str) -> str:
    """Outboxes for every personal kind; Kannel and the cloud SMS platforms only so that their hooks open.

    Their gateways point at a closed loopback port: nothing here is meant to send through them.
    """
    closed = "http://127.0.0.1:9/"
    channels = "".join(
        f'[channels.{kind}]\nkind = "{kind}"\ntype = "outbox"\nroot = "{folder / "outbox"}"\n\n'
        for kind in ("sms", "wechat", "wecom", "email")
    )
    channels += (
        f'[channels.kannel]\nkind = "sms"\ntype = "kannel"\norder = 10\nurl = "{closed}"\nusername = "u"\n'
        f'password = "p"\nhook_token = "{hook_token}"\n\n'
        f'[channels.aliyun]\nkind = "sms"\ntype = "aliyun_sms"\norder = 11\nendpoint = "{closed}"\n'
        f'access_key_id = "k"\naccess_key_secret = "s"\nsign_name = "昌乐县"\ntemplate_code = "SMS_1"\n'
        f'hook_token = "{hook_token}"\n\n'
        f'[channels.tencent]\nkind = "sms"\ntype = "tencent_sms"\norder = 12\nendpoint = "{closed}"\n'
        f'secret_id = "k"\nsecret_key = "s"\nsdk_app_id = "1400000000"\nsign_name = "昌乐县"\n'
        f'template_id = "1"\nhook_token = "{hook_token}"\n\n'
    )
    return (
        f'[server]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n\n'
        f'[database]\nurl = "sqlite:///{folder / "notifier.db"}"\n\n'
        f'[security]\nsigning_secret = "{secrets.token_urlsafe(32)}"\n\n{channels}'
    )


async def _seed(database_url: str) -> tuple[str, str]:
    """The demo county; an admin key of the environment department (it may do every operation), and the
    prefix of a second key that the revoke operation is pointed at, so that the run never revokes its own."""
    db = await open_database(database_url)
    try:
        await db.migrate()
        store = Store(db)
        await load_demo(store)
        _, key = await store.create_api_key(department="environment", role=Role.ADMIN, name="fuzz", actor="test")
        _, spare = await store.create_api_key(department="environment", role=Role.VIEWER, name="spare", actor="test")
        return key, spare.split("_")[1]
    finally:
        await db.close()


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited during start-up"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)  # polling a port that is not open yet: there is no event to wait on
    raise AssertionError("the server did not answer /healthz")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    port = _free_port()
    hook_token = secrets.token_urlsafe(24)
    config = tmp_path / "config.toml"
    config.write_text(_config(tmp_path, port, hook_token), encoding="utf-8")
    admin_key, spare_prefix = asyncio.run(_seed(f"sqlite:///{tmp_path / 'notifier.db'}"))
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "notifier", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, server)
        yield Service(base_url, admin_key, spare_prefix, hook_token, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _schemathesis(service: Service, key: str, report: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NOTIFIER_ST_BASE_URL": service.base_url,
        "NOTIFIER_ST_API_KEY": key,
        "NOTIFIER_ST_HOOK_TOKEN": service.hook_token,
        "NOTIFIER_ST_SPARE_PREFIX": service.spare_prefix,
        "NO_COLOR": "1",
    }
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{service.base_url}/openapi.json", "--checks", "all",
        "--exclude-checks", "positive_data_acceptance", "--report-junit-path", str(report), *options,
    ]  # fmt: skip
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=800, check=False)


def _our_errors(service: Service) -> str:
    """The server log from the first error our own code logged (aiohttp's parser complaints are not ours)."""
    text = service.log.read_text(encoding="utf-8", errors="replace")
    first = re.search(r"^.* ERROR notifier.*$", text, re.MULTILINE)
    return text[first.start() :][:8000] if first else ""


def _explain(run: subprocess.CompletedProcess[str], service: Service) -> str:
    return run.stdout[-12000:] + run.stderr[-3000:] + "\nserver log:\n" + _our_errors(service)


def _assert_all_tested(output: str) -> None:
    selected = re.search(r"Selected: ([0-9]+)/([0-9]+)", output)
    tested = re.search(r"Tested: ([0-9]+)", output)
    assert selected and tested, output[-3000:]
    assert selected[1] == selected[2] == tested[1], output[-3000:]


def test_schemathesis_finds_nothing_with_a_valid_key(service: Service, tmp_path: Path) -> None:
    run = _schemathesis(service, service.admin_key, tmp_path / "junit.xml")
    assert run.returncode == 0, _explain(run, service)
    print(run.stdout)  # the phases, links covered and figures, shown by pytest -rP
    _assert_all_tested(run.stdout)
    assert re.search(r"Stateful \(in [0-9.]+s\)", run.stdout), run.stdout[-3000:]
    assert not _our_errors(service), _explain(run, service)


def _assert_all_tested(output: str) -> None:
    selected = re.search(r"Selected: ([0-9]+)/([0-9]+)", output)
    tested = re.search(r"Tested: ([0-9]+)", output)
    assert selected and tested, output[-3000:]
    assert selected[1] == selected[2] == tested[1], output[-3000:]


def test_schemathesis_finds_nothing_without_a_valid_key(service: Service, tmp_path: Path) -> None:
    unknown = "ntf_000000000000_" + secrets.token_urlsafe(32)
    run = _schemathesis(service, unknown, tmp_path / "junit.xml", "--phases", "examples,fuzzing", "-n", "3")
    assert run.returncode == 0, _explain(run, service)
    _assert_all_tested(run.stdout)
    assert not _our_errors(service), _explain(run, service)
