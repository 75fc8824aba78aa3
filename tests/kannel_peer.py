"""A real Kannel (bearerbox + smsbox + fakesmsc) on 127.0.0.1, started and stopped by a test.

``async with kannel_peer(tmp_path, mo_url=...) as kannel:`` writes ``kannel.conf`` (the one docs/kannel.md
explains, every socket on 127.0.0.1, free ports), starts bearerbox, a fakesmsc on the MT link, then smsbox,
and waits until bearerbox listens (checked with ``ss``: a probe connection to the fake SMSC port would be
taken for a fakesmsc client) and the admin status page shows the MT link online and smsbox connected.
``kannel.received()`` reads what fakesmsc printed (decoded text per message); ``kannel.inject_mo(...)``
runs a second, short-lived fakesmsc on the MO link. Everything is stopped by PID on exit.
``kannel_hook_app(store, settings, token)`` serves the app with the Kannel hooks on a real port for the alias
``kannel``, and ``mo_hook_url(base, token)`` is the sms-service URL to give ``kannel_peer``.
Without Kannel installed (``bash scripts/install-peers``) the test is skipped; CI turns that into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app, hooks
from notifier.config import Settings
from notifier.store import Store

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
SENDSMS_USER, SENDSMS_PASSWORD = "tester", "foobar"
SENDER = "10086"
DENIED_PREFIX = "999"  # receivers starting with it are unroutable: HTTP 403 and a type-16 DLR
_GOT = re.compile(r"Got message \d+: <(.*)>")
MO_ESCAPES = "from=%p&text=%b&coding=%c&charset=%C&id=%I"
"""The sms-service get-url's query after alias and token, as docs/kannel.md shows it: ``%b`` is the text's own
bytes (``%a`` squeezes 0x20 bytes and so corrupts UCS-2 texts); ``%I`` Kannel's id of the message."""

CONFIG = """\
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = adminpw
status-password = statuspw
admin-allow-ip = "127.0.0.1"
smsbox-port = {box}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{dir}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = FAKE
port = {mt}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"
denied-prefix = "{denied}"

group = smsc
smsc = fake
smsc-id = FAKEMO
port = {mo}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"
allowed-smsc-id = FAKEMO

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
global-sender = {sender}
log-file = "{dir}/smsbox.log"
log-level = 1
http-request-retry = 5
http-queue-delay = 30

group = sendsms-user
username = {user}
password = {password}
user-allow-ip = "127.0.0.1"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
get-url = "{mo_url}"
max-messages = 0
"""


@dataclass(frozen=True)
class FakeSms:
    """One MT message as fakesmsc printed it."""

    sender: str
    receiver: str
    kind: str  # text, ucs-2, data, udh ...
    payload: str  # URL-encoded as fakesmsc prints it

    @property
    def text(self) -> str:
        raw = unquote_to_bytes(self.payload)
        return raw.decode("utf-16-be") if self.kind == "ucs-2" else raw.decode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class KannelPeer:
    dir: Path
    ports: dict[str, int]
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms"

    def received(self) -> list[FakeSms]:
        """Every MT message fakesmsc has printed so far."""
        text = (self.dir / "fakesmsc.out").read_text(encoding="utf-8", errors="replace")
        messages = []
        for match in _GOT.finditer(text):
            parts = match.group(1).split(" ", 3)
            sender, receiver, kind, payload = parts + [""] * (4 - len(parts))
            messages.append(FakeSms(sender, receiver, kind, payload))
        return messages

    async def start(self, mo_url: str) -> None:
        config = self.dir / "kannel.conf"
        config.write_text(
            CONFIG.format(
                dir=self.dir, mo_url=mo_url.replace('"', "%22"), sender=SENDER, user=SENDSMS_USER,
                password=SENDSMS_PASSWORD, denied=DENIED_PREFIX, **self.ports,
            ),
            encoding="utf-8",
        )
        await self._spawn("bearerbox", BEARERBOX, "-v", "1", str(config))
        await wait_until(lambda: self._listening(self.ports["box"], self.ports["mt"]), "bearerbox to listen")
        await self._spawn("fakesmsc", FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["mt"]), "-i", "1", "-m", "0",
                          "0 0 text unused")
        await self._spawn("smsbox", SMSBOX, "-v", "1", str(config))
        await wait_until(self._ready, "fake SMSC online and smsbox connected")

    async def inject_mo(self, sender: str, text: str, until: Callable[[], Awaitable[bool]]) -> None:
        """Send one inbound SMS from ``sender`` through the MO link; stop the injector once ``until()`` holds."""
        if text.isascii():
            line = f"{sender} {SENDER} text {text}"
        else:
            line = f"{sender} {SENDER} ucs2 " + "".join(f"%{b:02X}" for b in text.encode("utf-16-be"))
        await self._spawn("injector", FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["mo"]), "-m", "1", line)
        try:
            await wait_until(until, "the inbound SMS to reach the hook")
        finally:
            await self._stop("injector")

    async def stop(self) -> None:
        for name in ("injector", "smsbox", "fakesmsc", "bearerbox"):
            await self._stop(name)

    async def _spawn(self, name: str, *argv: str) -> None:
        out = _log_file(self.dir / f"{name}.out")
        try:
            self.processes[name] = await asyncio.create_subprocess_exec(
                *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=self.dir
            )
        finally:
            out.close()

    async def _stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _listening(self, *ports: int) -> bool:
        for port in ports:
            ss = await asyncio.create_subprocess_exec(
                "ss", "-Hltn", f"sport = :{port}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            out, _ = await ss.communicate()
            if not out.strip():
                return False
        return True

    async def _ready(self) -> bool:
        for name in ("bearerbox", "fakesmsc", "smsbox"):
            if self.processes[name].returncode is not None:
                raise RuntimeError(f"{name} exited; see {self.dir}/{name}.out")
        status_url = f"http://127.0.0.1:{self.ports['admin']}/status.txt?password=statuspw"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(status_url) as response:
                    status = await response.text()
                async with session.get(f"http://127.0.0.1:{self.ports['sendsms']}/") as response:
                    await response.read()
        except aiohttp.ClientError:
            return False
        online = f"FAKE:{self.ports['mt']} (online" in status
        return online and re.search(r"^\s*smsbox:", status, re.MULTILINE) is not None


def _log_file(path: Path) -> BinaryIO:
    return path.open("ab")


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    """Poll ``condition`` (state in another process or the database) until it holds; fail after ``within`` s."""

    async def poll() -> None:
        while not await condition():  # noqa: ASYNC110 - the state lives outside this event loop
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), within)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


def require_kannel() -> None:
    """Skip the calling test, saying why, when Kannel's programs are not installed."""
    missing = [p for p in (BEARERBOX, SMSBOX, FAKESMSC) if not Path(p).exists()]
    if missing or shutil.which("ss") is None:
        pytest.skip(f"Kannel is not installed ({', '.join(missing) or 'ss'} missing): run `bash scripts/install-peers`")


@contextlib.asynccontextmanager
async def kannel_peer(tmp_path: Path, mo_url: str) -> AsyncIterator[KannelPeer]:
    """A running Kannel whose sms-service forwards inbound SMS to ``mo_url``; skipped when not installed."""
    require_kannel()
    folder = tmp_path / "kannel"
    folder.mkdir()
    peer = KannelPeer(folder, {name: free_port() for name in ("admin", "box", "mt", "mo", "sendsms")})
    try:
        await peer.start(mo_url)
        yield peer
    finally:
        await peer.stop()


@contextlib.asynccontextmanager
async def kannel_hook_app(store: Store, settings: Settings, token: str, **options: str) -> AsyncIterator[
    tuple[str, Settings]
]:  # fmt: skip
    """The app with the hooks on a real port (its base URL, its settings): the settings declare the Kannel alias
    ``kannel`` with the test sendsms account, ``hook_token`` = ``token`` and ``options`` (``confirm_text``...)."""
    channels = {"kannel": {"kind": "sms", "type": "kannel", "username": SENDSMS_USER, "password": SENDSMS_PASSWORD,
                           "hook_token": token, **options}}  # fmt: skip
    app_settings = Settings.model_validate({"database": {"url": settings.database.url}, "channels": channels})
    server = TestServer(create_app(app_settings, store=store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app_settings
    finally:
        await server.close()


def mo_hook_url(base: str, token: str) -> str:
    """The sms-service get-url that forwards inbound SMS to the app at ``base`` (docs/kannel.md's)."""
    return f"{base}/hooks/kannel/mo?alias=kannel&token={token}&{MO_ESCAPES}"
