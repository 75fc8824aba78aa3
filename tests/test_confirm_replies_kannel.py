"""Confirmations and feedback by SMS reply, through a real Kannel: fakesmsc injects the resident's reply, Kannel's
sms-service calls our MO hook, and the reply confirms the right delivery or becomes a feedback item."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.kannel import KannelChannel, KannelOptions
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from tests.conftest import VILLAGE_A1, VILLAGE_A2
from tests.kannel_peer import SENDSMS_PASSWORD, SENDSMS_USER, KannelPeer, kannel_hook_app, kannel_peer, mo_hook_url

TOKEN = "t0ken-for-kannel-confirmations"
ASKER, OTHER = "+8613900139001", "+8613900139002"


@pytest.fixture
async def hook_server(store: Store, settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    async with kannel_hook_app(store, settings, TOKEN, signature="昌乐县政府", confirm_text="回复1确认收到") as served:
        yield served


@pytest.fixture
async def kannel(tmp_path: Path, hook_server: tuple[str, Settings]) -> AsyncIterator[KannelPeer]:
    async with kannel_peer(tmp_path, mo_hook_url(hook_server[0], TOKEN)) as peer:
        yield peer


async def approved(store: Store, title: str, **fields: Any) -> int:
    data = {"topic": "social-assistance", "title": title, "body": "请于12月5日前到村委会领取。",
            "target": {"areas": [VILLAGE_A1[:9]]}, "channels": ["sms"], **fields}
    notice, _ = await store.create_notice(NoticeIn.model_validate(data), department="civil-affairs",
                                          created_by=None, actor="test")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    return notice.id


async def states(store: Store, notice_id: int) -> dict[int, str]:
    deliveries, _ = await store.list_deliveries(notice_id, None, 100)
    return {d.subscriber_id: d.state for d in deliveries}


@pytest.mark.peer("kannel")
async def test_a_reply_of_1_confirms_the_latest_awaiting_notice_and_other_text_becomes_feedback(
    store: Store, hook_server: tuple[str, Settings], kannel: KannelPeer
) -> None:
    _, app_settings = hook_server
    asker = await store.create_subscriber(SubscriberIn.model_validate(
        {"name": "王秀英", "phone": ASKER, "area_code": VILLAGE_A1, "channels": ["sms"]}), "test")
    other = await store.create_subscriber(SubscriberIn.model_validate(
        {"name": "李建国", "phone": OTHER, "area_code": VILLAGE_A2, "channels": ["sms"]}), "test")
    first = await approved(store, "临时救助金发放通知", confirmation={"remind_after_minutes": 120})
    plain = await approved(store, "冬季取暖提示")  # asks for no confirmation
    latest = await approved(store, "低保金发放通知", confirmation={})
    channel = KannelChannel("kannel", KannelOptions.model_validate({
        "url": kannel.sendsms_url, "username": SENDSMS_USER, "password": SENDSMS_PASSWORD, "signature": "昌乐县政府",
        "hook_token": TOKEN,
    }))
    await channel.open()
    try:
        await Engine(store, app_settings, {"kannel": channel}).run_until_idle()
    finally:
        await channel.close()
    texts = sorted(sms.text for sms in kannel.received() if sms.receiver == ASKER)
    assert len(texts) == 3
    asking = [t for t in texts if "发放通知" in t]
    assert len(asking) == 2 and all(t.endswith("回复1确认收到") for t in asking), texts
    assert not next(t for t in texts if "取暖" in t).endswith("回复1确认收到")

    async def latest_confirmed() -> bool:
        return (await states(store, latest))[asker.id] == "confirmed"

    await kannel.inject_mo(ASKER.removeprefix("+86"), "1", latest_confirmed)
    assert await states(store, first) == {asker.id: "sent", other.id: "sent"}
    assert await states(store, latest) == {asker.id: "confirmed", other.id: "sent"}
    assert (await states(store, plain))[asker.id] == "sent"

    async def first_confirmed() -> bool:  # the next "1" confirms the notice still awaiting: the older one
        return (await states(store, first))[asker.id] == "confirmed"

    await kannel.inject_mo(ASKER.removeprefix("+86"), "１", first_confirmed)  # a full-width 1 counts too

    async def feedback_arrived() -> bool:
        items, _ = await store.list_feedback(department="civil-affairs", unlinked=False, notice_id=None,
                                             state=None, overdue=None, cursor=None, limit=10)
        return bool(items)

    await kannel.inject_mo(OTHER.removeprefix("+86"), "我家的低保金什么时候发放？", feedback_arrived)
    items, _ = await store.list_feedback(department="civil-affairs", unlinked=False, notice_id=None, state=None,
                                         overdue=None, cursor=None, limit=10)
    [item] = items
    assert (item.notice_id, item.department, item.subscriber_id) == (latest, "civil-affairs", other.id)
    assert (item.channel, item.contact, item.text, item.state) == ("sms", OTHER, "我家的低保金什么时候发放？", "open")
    assert await states(store, latest) == {asker.id: "confirmed", other.id: "sent"}  # feedback confirms nothing
