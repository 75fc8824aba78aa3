"""Browser tests: Debian's chromium (/usr/bin/chromium) driven by Playwright for Python, against the real app
on a loopback port. No browser is ever downloaded.

Fixtures and helpers other browser tests reuse:

    console_server   the app (API, resident pages, console) on 127.0.0.1, over the ``store`` fixture
    engine_console   the app with an engine whose SMS alias ``sms`` and notice-board alias ``board`` are
                     RecordingChannels; the test runs the engine
                     (``await served.engine.run_until_idle()``) and the pages see what it did
    browser          a headless chromium (skipped when absent; a failure under NOTIFIER_REQUIRE_PEERS=1,
                     since every browser test carries ``@pytest.mark.peer("chromium")``)
    page             a fresh page (zh-CN, 1280x900) that fails its test if the browser reports a
                     Content-Security-Policy violation or an uncaught script error
    screenshot(page, name)   PNGs of the whole page at 360 and 1280 px wide in artefacts/screens/
    axe_check(page)          runs the vendored axe-core inside the page; fails on a serious or critical finding
    new_staff(store, ...)    a console account and its one-time password, as ``notifier staff create`` makes it
    log_in(page, base, login, password, new_password=None)   signs in through the form (and changes the
                     one-time password when ``new_password`` is given)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.console.passwords import hash_password, one_time_password
from notifier.domain.enums import Role
from notifier.domain.staff import StaffMember
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.conftest import seed_catalog
from tests.databases import database_url, open_migrated

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "artefacts" / "screens"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS = (360, 1280)
# Chromium's flags for a quiet, offline headless run (../shared/reference/peers.md): no first-run work, no
# background traffic, and every host name but the loopback resolving to nothing
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
BAD_IMPACTS = ("serious", "critical")


@pytest.fixture
async def console_server(settings: Settings, store: Store) -> AsyncIterator[str]:
    """The whole app on a loopback port; its base URL (no trailing slash)."""
    server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@dataclass
class EngineConsole:
    base: str
    store: Store
    settings: Settings
    engine: Engine
    sms: RecordingChannel
    clock: FakeClock
    board: RecordingChannel


@pytest.fixture
async def engine_console(tmp_path: Path) -> AsyncIterator[EngineConsole]:
    settings = Settings.model_validate({
        "database": {"url": database_url(tmp_path, "console.db")},
        "security": {"signing_secret": "console-browser-test-secret"},
        "channels": {"sms": {"kind": "sms", "type": "recording"}, "board": {"kind": "bulletin", "type": "recording"}},
    })  # fmt: skip
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed_catalog(store)
    sms, board, clock = RecordingChannel("sms"), RecordingChannel("board"), FakeClock()
    engine = Engine(store, settings, {"sms": sms, "board": board}, clock=clock, jitter=lambda: 0.5)

    async def engine_factory(app: object) -> Engine | None:
        return engine

    server = TestServer(create_app(settings, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield EngineConsole(str(server.make_url("")).rstrip("/"), store, settings, engine, sms, clock, board)
    finally:
        await server.close()
        await db.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 (one stat before the browser starts)
        pytest.skip(f"{CHROMIUM} is not installed (bash scripts/install-peers)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (the test extra)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageProblems:
    """What the browser reported that a correct page never causes."""

    messages: list[str] = field(default_factory=list)


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    problems = PageProblems()

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.messages.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.messages.append(f"uncaught: {error}"))
    try:
        yield page
    finally:
        await context.close()
    assert not problems.messages, f"the browser reported: {problems.messages}"


async def screenshot(page: Any, name: str) -> list[Path]:
    """The page as it is, at 360 and 1280 px wide (whole length), as artefacts/screens/<name>-<width>.png."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 800})
        path = SCREENS / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    await page.set_viewport_size(original)
    return paths


async def axe_check(page: Any) -> None:
    """Run axe-core (vendored, evaluated through the DevTools protocol, which the page's CSP does not
    govern) on the page as it is; fail listing every serious or critical violation."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    results = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["html"][:200] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in BAD_IMPACTS
    ]
    assert not bad, f"axe-core on {page.url}:\n" + json.dumps(bad, ensure_ascii=False, indent=1)


async def new_staff(
    store: Store,
    *,
    department: str = "environment",
    role: Role = Role.ISSUER,
    name: str = "张明",
    login: str | None = None,
) -> tuple[StaffMember, str]:
    password = one_time_password()
    member = await store.create_staff_account(
        department=department, role=role, name=name, login=login, password_hash=await hash_password(password),
        actor="test",
    )  # fmt: skip
    return member, password


async def log_in(page: Any, base: str, login: str, password: str, new_password: str | None = None) -> None:
    await page.goto(f"{base}/console/login")
    await page.get_by_label("登录名").fill(login)
    await page.get_by_label("密码", exact=True).fill(password)
    await page.click("#login-submit")
    if new_password is not None:
        await page.wait_for_selector("#must-change")
        await page.get_by_label("当前密码").fill(password)
        await page.get_by_label("新密码（至少10个字符）").fill(new_password)
        await page.get_by_label("再次输入新密码").fill(new_password)
        await page.click("#password-submit")
        await page.wait_for_selector("#password-changed")
