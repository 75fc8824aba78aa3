"""The channels page in Chromium: per alias, what was sent in the last hour and drawn as an SVG chart, what
failed and why (with no number the gateway repeated), the queue, and the failover alias's circuit breakers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from channels.base import Failed
from notifier.api import create_app
from notifier.config import ChannelConfig, Settings
from notifier.console.channels import error_reason
from notifier.domain.enums import ChannelKind, NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.browser.conftest import axe_check, log_in, new_staff, screenshot
from tests.conftest import TOWN_A, VILLAGE_A1

pytestmark = pytest.mark.peer("chromium")

PASSWORD = "渠道页面-足够长-2026"
UNREACHABLE_OPENID = "oUnreachable0001"


def test_an_error_reason_keeps_no_number_or_address() -> None:
    assert error_reason("unreachable: 13800138000 does not follow") == "unreachable"
    assert error_reason("HTTP 503 for +86 138 0013 8000") == "HTTP 503 for ***"
    assert error_reason("550 li.na@example.org unknown") == "550 *** unknown"


@pytest.fixture
async def county(settings: Settings, store: Store, tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    """SMS through a failover alias over two outboxes, WeChat through a recording adapter that refuses one
    resident; an engine the test drives."""
    outbox = {"type": "outbox", "root": str(tmp_path / "outbox")}
    config = Settings.model_validate({
        "database": {"url": settings.database.url},
        "channels": {"sms-a": {"kind": "sms", **outbox}, "sms-b": {"kind": "sms", **outbox},
                     "sms-fo": {"kind": "sms", "type": "failover", "aliases": ["sms-a", "sms-b"]}},
    })  # fmt: skip
    adapters = dict(load_channels(config))
    config.channels["wechat"] = ChannelConfig(kind=ChannelKind.WECHAT, type="recording")
    wechat = RecordingChannel("wechat")
    wechat.plan(UNREACHABLE_OPENID, Failed("unreachable", "user 13800138003 does not follow the account"))
    engine = Engine(store, config, {**adapters, "wechat": wechat})

    async def engine_factory(app: object) -> Engine:
        return engine

    server = TestServer(create_app(config, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), engine
    finally:
        await server.close()


async def test_sent_failed_and_the_breakers_per_alias(county: tuple[str, Engine], store: Store, page: Any) -> None:
    base, engine = county
    openids = ["oFollower000001", "oFollower000002", UNREACHABLE_OPENID]
    for n, openid in enumerate(openids):
        await store.create_subscriber(SubscriberIn(name=f"居民{n}", phone=f"1380013800{n + 1}", wechat_openid=openid,
                                                   area_code=VILLAGE_A1, topics=["air-quality"],
                                                   channels=["wechat", "sms"]), "test")  # fmt: skip
    clerk, one_time = await new_staff(store, name="李文员", role=Role.ISSUER)
    approver, _ = await new_staff(store, name="王审核", role=Role.APPROVER)
    notice = NoticeIn.model_validate({"topic": "air-quality", "title": "重污染天气预警", "body": "请减少外出。",
                                      "severity": "severe", "target": {"areas": [TOWN_A]},
                                      "channels": ["wechat", "sms"]})  # fmt: skip
    created, _ = await store.create_notice(notice, department="environment", created_by=clerk.key_id,
                                           actor=clerk.actor)  # fmt: skip
    await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=clerk.actor)
    await store.decide_notice(created.id, NoticeState.APPROVED, decider=approver.as_key(), actor=approver.actor,
                              comment=None)  # fmt: skip
    await engine.run_until_idle()

    await log_in(page, base, clerk.login, one_time, new_password=PASSWORD)
    await page.click("nav >> text=渠道")
    await page.wait_for_selector("#channels")
    wechat_row, sms_row = page.locator("#alias-wechat"), page.locator("#alias-sms-fo")
    assert await wechat_row.locator(".sent").text_content() == "2"
    assert await wechat_row.locator(".errors").text_content() == "1"
    assert await sms_row.locator(".sent").text_content() == "1"  # the refused resident's fallback to SMS
    assert await sms_row.locator(".queued").text_content() == "0"
    breakers = await sms_row.locator(".breakers").text_content() or ""
    assert "sms-a：closed" in breakers and "sms-b：closed" in breakers
    errors = await page.text_content("#errors-wechat") or ""
    assert "unreachable" in errors and "13800138003" not in errors
    assert await page.locator("#chart-wechat rect").count() >= 1  # the minute of the sends, drawn on the server
    assert "2" in (await page.locator("#chart-wechat").get_attribute("aria-label") or "")
    await axe_check(page)
    await screenshot(page, "console-channels")
