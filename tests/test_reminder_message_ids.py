"""A reminder sent again on the same channel is a send of its own: its own Kannel message id, and a late delivery
report of the first send does not mark the reminder delivered.

The engine runs with the real Kannel adapter against a fake smsbox on 127.0.0.1 (it accepts every sendsms); the
reports go through the engine's receipt path (``record_receipt``), as the DLR hook hands them over."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from channels import load_channels
from channels.kannel import dlr_signature
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine, record_receipt
from notifier.store import Store
from notifier.testing import FakeClock
from tests.conftest import VILLAGE_A1
from tests.databases import database_url
from tests.fake_gateway import FakeGateway, Reply, fake_gateway

TOKEN = "hook-secret-for-reminders"


def kannel_settings(tmp_path: Path, gateway: FakeGateway) -> Settings:
    sms = {"kind": "sms", "type": "kannel", "url": f"{gateway.url}/cgi-bin/sendsms", "username": "notifier",
           "password": "sendsms-secret", "dlr_url": "https://tongzhi.example.gov.cn/hooks/kannel/dlr",
           "hook_token": TOKEN}  # fmt: skip
    return Settings.model_validate(
        {"database": {"url": database_url(tmp_path)}, "engine": {"confirm_window": 0}, "channels": {"sms": sms}}
    )


def dlr_ids(gateway: FakeGateway) -> list[str]:
    """The message id in each sendsms request's dlr-url, checked against its signature."""
    ids = []
    for seen in gateway.seen:
        query = parse_qs(urlsplit(seen.query["dlr-url"]).query)
        [message_id], [sig] = query["id"], query["sig"]
        assert sig == dlr_signature(TOKEN, "sms", message_id)
        ids.append(message_id)
    return ids


async def delivery_state(store: Store, notice_id: int) -> tuple[str, str | None]:
    [delivery], _ = await store.list_deliveries(notice_id, None, 10)
    return delivery.state, delivery.provider_message_id


async def test_a_late_report_of_the_first_send_does_not_mark_the_reminder_delivered(
    store: Store, tmp_path: Path
) -> None:
    await store.create_subscriber(
        SubscriberIn.model_validate({"name": "王芳", "phone": "+8613800138000", "area_code": VILLAGE_A1,
                                     "channels": ["sms"]}), "test")  # fmt: skip
    notice_in = NoticeIn.model_validate(
        {"topic": "social-assistance", "title": "临时救助金发放通知", "body": "请于12月5日前到村委会领取。",
         "target": {"areas": [VILLAGE_A1]}, "channels": ["sms"], "confirmation": {"remind_after_minutes": 60}}
    )  # fmt: skip
    notice, _ = await store.create_notice(notice_in, department="civil-affairs", created_by=None, actor="test")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    clock = FakeClock()
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as gateway:
        settings = kannel_settings(tmp_path, gateway)
        channels = load_channels(settings)
        engine = Engine(store, settings, channels, clock=clock)
        await channels["sms"].open()
        try:
            await engine.run_until_idle()
            [first_id] = dlr_ids(gateway)
            assert await delivery_state(store, notice.id) == ("sent", first_id)

            clock.advance(61 * 60)  # unconfirmed past the notice's time: the reminder, on the same (only) channel
            await engine.run_until_idle()
        finally:
            await channels["sms"].close()
    first, reminder = dlr_ids(gateway)
    assert first == first_id and reminder != first_id  # each send its own id, signed for its own DLR
    assert first_id == f"d{(await store.list_deliveries(notice.id, None, 10))[0][0].id}"  # the ids sent before
    assert await delivery_state(store, notice.id) == ("sent", reminder)

    # the first message reaches the handset now, after the reminder went out: that says nothing of the reminder
    assert await record_receipt(store, "sms", first_id, "delivered") != "applied"
    assert await delivery_state(store, notice.id) == ("sent", reminder)
    assert await record_receipt(store, "sms", reminder, "delivered") == "applied"
    assert await delivery_state(store, notice.id) == ("delivered", reminder)
