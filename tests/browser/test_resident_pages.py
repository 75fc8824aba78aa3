"""A resident's whole journey in real Chromium: a town board's QR link, the code from the SMS outbox,
/me from a requested link, channels reordered, leaving. On every page: axe-core (no serious or critical
finding), screenshots at 360 and 1280 px; hostile input comes back as text; forms without this browser's
CSRF token are refused; a tampered or expired /me link is refused with a page.

The app runs with an engine whose SMS alias is the outbox channel (files under the test's outbox folder),
as ``notifier serve`` does with the example config; the pages' and the engine's clock is a FakeClock the
test moves past the one-code-a-minute limit.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.errors import NotFound
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.residents import flow
from notifier.signing import UnsubscribeLinks
from notifier.store import Store
from notifier.store.audit import AuditFilter
from notifier.testing import FakeClock
from notifier.web.pages import CLOCK
from tests.browser.conftest import axe_check, screenshot
from tests.conftest import TOWN_A, VILLAGE_A1

pytestmark = pytest.mark.peer("chromium")

PHONE, E164 = "13800138000", "+8613800138000"
OPENID = "oia2TjuEGTNoeX76QEjQNrcURxG8"
XSS = '"><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@dataclass
class Resident:
    base: str
    outbox: Path
    clock: FakeClock
    store: Store
    settings: Settings


@pytest.fixture
async def served(settings: Settings, store: Store, tmp_path: Path) -> AsyncIterator[Resident]:
    """The app with a running engine (its SMS alias writes to the outbox folder)."""
    clock = FakeClock()
    engine = Engine(store, settings, load_channels(settings), clock=clock)
    await engine.start()

    async def engine_factory(app: object) -> Engine:
        return engine

    app = create_app(settings, store=store, engine_factory=engine_factory)
    app[CLOCK] = clock
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield Resident(str(server.make_url("")).rstrip("/"), tmp_path / "outbox" / "sms", clock, store, settings)
    finally:
        await server.close()
        await engine.stop(grace=5)


async def code_from_outbox(outbox: Path, seen: set[Path]) -> str:
    """The code in the next SMS file that reaches the outbox (bounded wait for the engine's worker)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(await asyncio.to_thread(lambda: list(outbox.glob("-*.txt")))):
            if path not in seen:
                seen.add(path)
                text = await asyncio.to_thread(path.read_text, encoding="utf-8")
                assert f"To: {E164}" in text
                return re.findall(r"验证码为([0-9]{6})", text)[0]
        await asyncio.sleep(0.05)  # polling the outbox folder for the file, within the deadline
    raise AssertionError(f"no code reached {outbox}")


async def check(page: Any, name: str) -> None:
    """axe-core finds nothing serious and no injected markup ran; screenshots at 360 and 1280 px."""
    await axe_check(page)
    assert await page.evaluate("() => window.__xss") is None
    assert await page.locator("main img, main script").count() == 0
    await screenshot(page, name)
    size = page.viewport_size
    await page.set_viewport_size({"width": 360, "height": 800})
    try:  # usable at 360 px: nothing sticks out sideways
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360, name
    finally:
        await page.set_viewport_size(size)


@pytest.mark.timeout(360)  # one journey over fifteen pages, two screenshots each, on a shared machine
async def test_a_resident_subscribes_from_a_town_board_manages_me_and_leaves(served: Resident, page: Any) -> None:
    store, base, outbox, seen = served.store, served.base, served.outbox, set[Path]()
    # registered earlier by the village committee, reached by WeChat only
    data = {"name": "李明", "phone": E164, "wechat_openid": OPENID, "area_code": VILLAGE_A1, "channels": ["wechat"],
            "topics": ["social-assistance"], "consent_source": "paper"}  # fmt: skip
    resident = await store.create_subscriber(SubscriberIn.model_validate(data), "test")

    # 1. the QR code of the town's notice board
    await page.goto(f"{base}/subscribe?area={TOWN_A}&topic=air-quality")
    await page.wait_for_selector("text=宝都街道")
    await check(page, "resident-subscribe-town")

    # hostile text in every field comes back as text (the phone and e-mail are wrong, so the form returns)
    await page.select_option("#area", VILLAGE_A1)
    await page.get_by_label("姓名", exact=True).fill(XSS)
    await page.get_by_label("手机号码", exact=True).fill(XSS[:20])
    await page.get_by_label("电子邮箱", exact=True).fill("x" + XSS[:40])
    await page.get_by_label("我同意接收", exact=False).check()
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error-phone")
    assert await page.input_value("#name") == XSS
    assert await page.input_value("#phone") == XSS[:20]
    await check(page, "resident-subscribe-errors")
    await page.click("input[name=channel][value=email]")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error-email")
    assert await page.input_value("#email") == "x" + XSS[:40]
    await check(page, "resident-subscribe-email-error")

    # 2. filled in properly: the code goes out by SMS through the engine
    await page.click("input[name=channel][value=sms]")
    await page.get_by_label("姓名", exact=True).fill("李明")
    await page.get_by_label("手机号码", exact=True).fill(PHONE)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#code")
    await check(page, "resident-subscribe-code")
    code = await code_from_outbox(outbox, seen)
    await page.get_by_label("验证码（6位数字）").fill(code)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:text('订阅成功')")
    await check(page, "resident-subscribed")
    after = await store.get_subscriber(resident.id)
    assert after.channels == ["wechat", "sms"] and sorted(after.topics) == ["air-quality", "social-assistance"]

    # 3. /me from a requested link (a minute later: one code a minute per number)
    served.clock.advance(61)
    await page.click("a[href='/me']")
    await page.wait_for_selector("#phone")
    await check(page, "resident-me-ask")
    await page.get_by_label("手机号码", exact=True).fill(XSS[:20])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error-phone")
    assert await page.input_value("#phone") == XSS[:20]
    await check(page, "resident-me-ask-error")
    await page.click("input[name=channel][value=email]")
    await page.get_by_label("电子邮箱", exact=True).fill("x" + XSS[:40])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#error-email")
    assert await page.input_value("#email") == "x" + XSS[:40]
    await check(page, "resident-me-ask-email-error")
    await page.click("input[name=channel][value=sms]")
    await page.get_by_label("手机号码", exact=True).fill(PHONE)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#code")
    await page.get_by_label("验证码（6位数字）").fill(await code_from_outbox(outbox, seen))
    await page.click("button[type=submit]")
    await page.wait_for_selector("#rank_sms")
    me_url = page.url
    assert "/me?token=" in me_url
    await check(page, "resident-me")

    # the English switch, and back
    await page.click("text=English")
    await page.wait_for_selector("h1:text('My notice settings')")
    assert await page.get_attribute("html", "lang") == "en"
    await check(page, "resident-me-en")
    await page.click("text=中文")
    await page.wait_for_selector("h1:text('我的通知设置')")

    # 4. channels: text messages first, WeChat second; quiet hours
    await page.select_option("#rank_sms", "1")
    await page.select_option("#rank_wechat", "2")
    await page.fill("#quiet_start", "22:00")
    await page.fill("#quiet_end", "07:00")
    await page.click("form[action='/me'] button[type=submit]")
    await page.wait_for_selector("text=已保存")
    await check(page, "resident-me-saved")
    after = await store.get_subscriber(resident.id)
    assert after.channels == ["sms", "wechat"] and after.quiet_hours is not None

    # a post without the form's CSRF value (the browser's cookies go along) and one from another browser
    token = re.search(r"token=([^&]+)", me_url)[1]  # type: ignore[index]
    response = await page.request.post(f"{base}/me", form={"token": token.replace("%3D", "="), "rank_sms": "1",
                                                             "topics": "education"}, max_redirects=0)  # fmt: skip
    assert response.status == 403
    form_token = await page.get_attribute("form[action='/me'] input[name=form_token]", "value")
    other = await page.context.browser.new_context()
    try:
        response = await other.request.post(f"{base}/me", form={"token": token, "form_token": form_token,
                                                                 "rank_sms": "1", "topics": "education"})
        assert response.status == 403
    finally:
        await other.close()
    assert (await store.get_subscriber(resident.id)).channels == ["sms", "wechat"]

    # a tampered and an expired link
    body, signature = token.split(".")
    await page.goto(f"{base}/me?token={body[:-2]}{'AA' if body[-2:] != 'AA' else 'BB'}.{signature}")
    await page.wait_for_selector("h1:text('链接无效')")
    await check(page, "resident-me-tampered")
    stale = flow.me_token(served.settings.security.signing_secret, resident.id, time.time() - 2 * flow.ME_TTL)
    response = await page.goto(f"{base}/me?token={quote(stale)}")
    assert response.status == 410
    await page.wait_for_selector("h1:text('链接已过期')")
    await check(page, "resident-me-expired")

    # the one-click unsubscribe page of an e-mail (another resident page)
    links = UnsubscribeLinks(base, served.settings.security.signing_secret)
    await page.goto(links.url(resident.id, "email"))
    await page.wait_for_selector("button[type=submit]")
    await check(page, "resident-unsubscribe")
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:text('已退订')")
    await check(page, "resident-unsubscribed")

    # 5. leaving
    await page.goto(me_url)
    await page.wait_for_selector("#rank_sms")
    await page.get_by_label("我确认删除").check()
    await page.click("form[action='/me/delete'] button[type=submit]")
    await page.wait_for_selector("h1:text('已删除')")
    await check(page, "resident-deleted")
    with pytest.raises(NotFound):
        await store.get_subscriber(resident.id)
    audit = [(e.actor, e.action) for e in (await store.list_audit(AuditFilter(), None, 200))[0]]
    assert ("web:me", "subscriber.delete") in audit and ("web:me", "subscriber.update") in audit
