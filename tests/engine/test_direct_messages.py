"""Transactional messages (verification codes, /me links) through the engine: before any notice's delivery,
under the alias's rate limit, failing over to the backup gateway, and given up at their deadline."""

from __future__ import annotations

from channels.base import Failed, Retry
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.store.direct_messages import DirectMessage
from notifier.testing import FakeClock, RecordingChannel
from tests.engine.conftest import approved, resident

PHONE = "+8613800138000"


def code(clock: FakeClock, alias: str = "sms-main", ttl: float = 600) -> DirectMessage:
    return DirectMessage("subscribe-code", "sms", alias, PHONE, "您的订阅验证码为123456", clock() + ttl)


async def test_a_code_goes_out_before_a_notice_already_queued_on_the_same_gateway(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    engine.ctx.settings.engine.batch_size = 2
    for _ in range(4):
        await resident(engine_store)
    await approved(engine_store, title="storm", severity="extreme")
    await engine.run_once()  # fanned out, the first batch of the notice sent
    assert [m.subject for m in channels["sms-main"].messages] == ["storm", "storm"]

    message_id = await engine_store.queue_direct_message(code(clock), clock())
    await engine.run_once()  # the next batch on the alias is the code, though two deliveries wait
    third = channels["sms-main"].messages[2]
    assert (third.recipient, third.text, third.delivery_id, third.notice_id) == (PHONE, "您的订阅验证码为123456",
                                                                               -message_id, 0)  # fmt: skip
    assert third.priority > channels["sms-main"].messages[0].priority
    row = await engine_store.get_direct_message(message_id)
    assert row is not None and row["state"] == "sent" and row["text"] == "" and row["provider_message_id"]
    await engine.run_until_idle()
    assert [m.subject for m in channels["sms-main"].messages[3:]] == ["storm", "storm"]


async def test_a_permanent_failure_moves_the_code_to_the_backup_gateway(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    channels["sms-main"].plan(PHONE, Failed("gateway-refused", "no route"))
    message_id = await engine_store.queue_direct_message(code(clock), clock())
    await engine.run_until_idle()
    assert [m.alias for m in channels["sms-main"].messages] == ["sms-main"]
    assert [m.text for m in channels["sms-backup"].messages] == ["您的订阅验证码为123456"]
    row = await engine_store.get_direct_message(message_id)
    assert row is not None and (row["alias"], row["state"], row["attempts"]) == ("sms-backup", "sent", 2)


async def test_a_gateway_that_is_down_is_not_waited_for(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    channels["sms-main"].plan(PHONE, Retry("connection refused"))
    await engine_store.queue_direct_message(code(clock), clock())
    await engine.run_until_idle()  # no clock move: the backup takes it in the same burst
    assert len(channels["sms-backup"].messages) == 1


async def test_on_the_last_gateway_a_temporary_failure_retries_until_the_deadline(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    channels["sms-backup"].plan(PHONE, Retry("busy"))
    message_id = await engine_store.queue_direct_message(code(clock, "sms-backup", ttl=30), clock())
    await engine.run_until_idle()
    row = await engine_store.get_direct_message(message_id)
    assert row is not None and row["state"] == "queued" and row["text"]  # waits for its retry
    for _ in range(10):
        clock.advance(10)
        await engine.run_until_idle()
    row = await engine_store.get_direct_message(message_id)
    assert row is not None and row["state"] == "failed" and row["text"] == "" and "busy" in row["last_error"]
    assert len(channels["sms-backup"].messages) >= 2


async def test_codes_share_the_alias_rate_limit(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    engine_settings.channels["sms-main"].rate_per_second = 2
    engine = Engine(engine_store, engine_settings, dict(channels), clock=clock)
    for _ in range(3):
        await engine_store.queue_direct_message(code(clock), clock())
    await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 2
    clock.advance(1)
    await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 3


async def test_codes_and_their_requests_are_forgotten_after_a_day(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    message_id = await engine_store.queue_direct_message(code(clock), clock())
    await engine.run_until_idle()
    clock.advance(86400 - 1)
    await engine.run_until_idle()
    assert await engine_store.get_direct_message(message_id) is not None
    clock.advance(2)
    await engine.run_until_idle()  # the chores delete it: it held a phone number
    assert await engine_store.get_direct_message(message_id) is None
