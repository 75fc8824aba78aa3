"""Results and what follows: retries on the backoff, backup gateways, fallback, cancel, receipts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.base import Channel, Failed, OutboundMessage, Retry, SendResult, Sent
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.errors import Conflict
from notifier.engine import Engine, ReceiptOutcome, cancel_notice, record_receipt
from notifier.engine.dispatch import NO_MESSAGE_ID, NOT_AN_OUTCOME
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import run_sql
from tests.engine.conftest import approved, delivery_rows, resident


async def queue_row(store: Store, delivery_id: int) -> dict[str, Any]:
    rows = await run_sql(
        store.db, "SELECT state, attempts, due_at, alias, last_error FROM deliveries WHERE id = ?", (delivery_id,)
    )
    return rows[0]


async def test_retries_follow_the_backoff(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    person = await resident(engine_store)
    channels["sms-main"].plan(person.phone or "", Retry("gateway busy"), Retry("busy", retry_after=30), Retry("busy"))
    notice = await approved(engine_store)
    await engine.run_until_idle()
    delivery_id = (await delivery_rows(engine_store, notice.id))[0]["id"]

    # jitter is fixed at 0.5, so each delay is 0.75 x base * 2**(attempt-1); Retry-After is taken as given
    for attempt, delay in [(1, 1.5), (2, 30.0), (3, 6.0), (4, 12.0)]:
        row = await queue_row(engine_store, delivery_id)
        assert (row["state"], row["attempts"], row["due_at"] - clock.now) == ("queued", attempt, pytest.approx(delay))
        clock.advance(delay - 0.01)
        await engine.run_until_idle()
        assert len(channels["sms-main"].messages) == attempt  # not a moment early
        clock.advance(0.01)
        await engine.run_until_idle()
    assert len(channels["sms-main"].messages) == 5
    assert (await queue_row(engine_store, delivery_id))["state"] == "failed"  # no other channel to fall back to


async def test_retries_exhausted_fall_back_to_the_next_channel(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    person = await resident(engine_store, email="d@example.org", channels=["sms", "email"])
    channels["sms-main"].plan(person.phone or "", Retry("gateway busy"))
    notice = await approved(engine_store, channels=["sms", "email"])

    for _ in range(6):
        await engine.run_until_idle()
        clock.advance(60)

    rows = {r["channel"]: r for r in await delivery_rows(engine_store, notice.id)}
    assert (rows["sms"]["state"], rows["sms"]["last_error"]) == ("fallback", "retries exhausted: gateway busy")
    assert rows["email"]["state"] == "sent"
    assert channels["email"].recipients() == ["d@example.org"]


async def test_permanent_failure_tries_the_backup_gateway_then_the_next_channel(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    person = await resident(engine_store, wechat_openid="openid-abc", channels=["sms", "wechat"])
    for alias in ("sms-main", "sms-backup"):
        channels[alias].plan(person.phone or "", Failed("invalid-number", "no such subscriber"))
    notice = await approved(engine_store, channels=["sms", "wechat"])

    await engine.run_until_idle()

    assert len(channels["sms-main"].messages) == 1  # permanent: never retried on the same gateway
    assert len(channels["sms-backup"].messages) == 1
    assert channels["wechat"].recipients() == ["openid-abc"]
    rows = {r["channel"]: r for r in await delivery_rows(engine_store, notice.id)}
    assert rows["sms"]["state"] == "fallback"
    assert rows["sms"]["last_error"] == "invalid-number: no such subscriber"
    assert rows["wechat"]["state"] == "sent"


async def test_unconfirmed_delivery_falls_back_after_the_confirm_window(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    engine.ctx.settings.engine.confirm_window = 600
    confirmed = await resident(engine_store, email="e@example.org", channels=["sms", "email"])
    silent = await resident(engine_store, email="f@example.org", channels=["sms", "email"])
    await approved(engine_store, channels=["sms", "email"])
    await engine.run_until_idle()
    by_phone = {m.recipient: m for m in channels["sms-main"].messages}
    receipt_id = f"sms-main-{by_phone[confirmed.phone].delivery_id}-1"
    assert await record_receipt(engine_store, "sms-main", receipt_id, "delivered", None) is ReceiptOutcome.APPLIED

    clock.advance(599)
    await engine.run_until_idle()
    assert channels["email"].messages == []
    clock.advance(2)
    await engine.run_until_idle()

    assert channels["email"].recipients() == [silent.email]


async def test_a_message_no_receipt_can_confirm_is_not_handed_over_after_the_window(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    """E-mail reports no delivery: with a confirm window set, a sent e-mail stays sent and the resident is not
    sent the notice again on their next channel when the window passes."""
    engine.ctx.settings.engine.confirm_window = 600
    channels["email"].options.reports_delivery = False  # type: ignore[attr-defined]
    silent = await resident(engine_store, email="g@example.org", channels=["email", "sms"])
    notice = await approved(engine_store, channels=["email", "sms"])
    await engine.run_until_idle()
    assert channels["email"].recipients() == [silent.email]

    clock.advance(601)
    await engine.run_until_idle()

    assert channels["sms-main"].messages == []
    assert [(row["channel"], row["state"]) for row in await delivery_rows(engine_store, notice.id)] == [
        ("email", "sent")
    ]


async def test_receipts_confirm_once_and_unknown_ones_are_ignored(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    await resident(engine_store)
    notice = await approved(engine_store)
    await engine.run_until_idle()
    message_id = f"sms-main-{channels['sms-main'].messages[0].delivery_id}-1"

    assert await engine.record_receipt("sms-main", message_id, "delivered") is ReceiptOutcome.APPLIED
    assert await engine.record_receipt("sms-main", message_id, "delivered") is ReceiptOutcome.DUPLICATE
    assert await engine.record_receipt("sms-main", "no-such-id", "delivered") is ReceiptOutcome.UNKNOWN
    assert await engine.record_receipt("sms-backup", message_id, "delivered") is ReceiptOutcome.UNKNOWN
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1}}


@pytest.mark.parametrize("legacy_id", ["None", ""])
async def test_a_receipt_naming_no_message_matches_none_of_the_sends_older_versions_recorded_without_an_id(
    engine: Engine, engine_store: Store, legacy_id: str
) -> None:
    """Older adapters recorded a success answered without an id as "None" (Aliyun, Tencent) or "" (WeCom): several
    sends share it, and a receipt carrying it would confirm or fail whichever one it found first. (The engine
    records no such id today, and migration 033 clears them: the sends are given it behind their backs.)"""
    await resident(engine_store)
    await resident(engine_store)
    notice = await approved(engine_store)
    await engine.run_until_idle()
    await run_sql(
        engine_store.db, "UPDATE deliveries SET provider_message_id = ? WHERE notice_id = ?", (legacy_id, notice.id)
    )

    outcomes = [await engine.record_receipt("sms-main", legacy_id, status) for status in ("delivered", "failed")]

    assert [row["state"] for row in await delivery_rows(engine_store, notice.id)] == ["sent", "sent"]
    assert await run_sql(engine_store.db, "SELECT id FROM receipts") == []  # not kept for a send to come either
    assert outcomes == ["no-id", "no-id"]  # ReceiptOutcome.NO_ID


class Answers(Channel):
    """A third-party adapter that answers ``answer`` for every message: a ``Sent`` with the provider's message id
    it chose, or something that is no send result at all."""

    def __init__(self, alias: str, answer: object) -> None:
        super().__init__(alias)
        self.answer = answer
        self.handed: list[OutboundMessage] = []

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        self.handed.extend(batch)
        return [self.answer for _ in batch]  # type: ignore[misc]


@pytest.mark.parametrize("answer", ["", " ", "None"])
async def test_a_send_answered_without_a_message_id_is_retried_not_recorded_under_that_id(
    engine_store: Store,
    engine_settings: Settings,
    channels: dict[str, RecordingChannel],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    answer: str,
) -> None:
    """The shipped adapters answer a success without an id Retry(UNRECOGNISED); a third-party adapter's
    Sent("") would otherwise be recorded under an id every such send shares, which one receipt could match."""
    person = await resident(engine_store)
    adapter = Answers("sms-main", Sent(answer))
    engine = Engine(engine_store, engine_settings, {**channels, "sms-main": adapter}, clock=clock, jitter=lambda: 0.5)
    notice = await approved(engine_store)

    with caplog.at_level(logging.INFO):
        await engine.run_until_idle()

    (row,) = await delivery_rows(engine_store, notice.id)
    assert (row["state"], row["provider_message_id"], row["last_error"]) == ("queued", None, NO_MESSAGE_ID)
    assert "channel sms-main answered 1 of 1 messages sent without a message id" in caplog.text
    assert (person.phone or "")[-8:] not in caplog.text
    adapter.answer = Sent(" gw-7 ")  # the id as message_id_of reads it, as the shipped adapters record theirs
    clock.advance(60)
    await engine.run_until_idle()
    (row,) = await delivery_rows(engine_store, notice.id)
    assert (row["state"], row["provider_message_id"]) == ("sent", "gw-7")
    assert [message.recipient for message in adapter.handed] == [person.phone] * 2


async def test_a_receipt_finds_a_send_whose_id_the_engine_recorded_without_its_blanks(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    """A third-party adapter's Sent(" gw-7 ") is recorded as "gw-7"; its receipt, handed over as the adapter
    reads it (" gw-7 "), still finds it."""
    await resident(engine_store)
    adapter = Answers("sms-main", Sent(" gw-7 "))
    engine = Engine(engine_store, engine_settings, {**channels, "sms-main": adapter}, clock=clock, jitter=lambda: 0.5)
    notice = await approved(engine_store)
    await engine.run_until_idle()

    assert await engine.record_receipt("sms-main", " gw-7 ", "delivered") is ReceiptOutcome.APPLIED
    assert [(row["state"], row["provider_message_id"]) for row in await delivery_rows(engine_store, notice.id)] == [
        ("delivered", "gw-7")
    ]


async def test_receipt_that_overtakes_its_send_is_applied_when_the_send_is_recorded(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    await resident(engine_store)
    notice = await approved(engine_store)
    early_id = "sms-main-1-1"  # what the recording channel will answer for delivery 1, first attempt
    assert await engine.record_receipt("sms-main", early_id, "delivered") is ReceiptOutcome.UNKNOWN
    assert await engine.record_receipt("sms-main", "never-sent", "delivered") is ReceiptOutcome.UNKNOWN
    await engine.run_until_idle()

    assert channels["sms-main"].messages[0].delivery_id == 1
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1}}
    assert await engine.record_receipt("sms-main", early_id, "delivered") is ReceiptOutcome.DUPLICATE


async def test_failure_receipt_hands_over_to_the_next_channel(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    await resident(engine_store, email="g@example.org", channels=["sms", "email"])
    await approved(engine_store, channels=["sms", "email"])
    await engine.run_until_idle()
    message_id = f"sms-main-{channels['sms-main'].messages[0].delivery_id}-1"

    assert await engine.record_receipt("sms-main", message_id, "failed", "handset off") is ReceiptOutcome.APPLIED
    await engine.run_until_idle()

    assert channels["email"].recipients() == ["g@example.org"]


async def test_cancel_stops_every_delivery_not_yet_sent(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    engine.ctx.settings.engine.batch_size = 2
    for _ in range(5):
        await resident(engine_store)
    notice = await approved(engine_store)
    await engine.run_once()  # fan-out and one batch of two
    assert len(channels["sms-main"].messages) == 2

    assert await cancel_notice(engine_store, notice.id, "issuer") == 3
    await engine.run_until_idle()

    assert len(channels["sms-main"].messages) == 2
    final = await engine_store.get_notice(notice.id)
    assert final.state is NoticeState.CANCELLED
    assert final.counts == {"sms": {"sent": 2, "skipped": 3}}
    with pytest.raises(Conflict):
        await cancel_notice(engine_store, notice.id, "issuer")


async def test_cancel_set_by_the_api_is_honoured_before_the_provider_call(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    for _ in range(3):
        await resident(engine_store)
    notice = await approved(engine_store)
    await fan_out_next(engine.ctx)  # deliveries queued, none sent yet
    await engine_store.transition_notice(notice.id, [NoticeState.SCHEDULED], NoticeState.CANCELLED, actor="api")

    await engine.run_until_idle()

    assert channels["sms-main"].messages == []
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"skipped": 3}}


async def test_expired_notice_stops_sending(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock
) -> None:
    person = await resident(engine_store)
    channels["sms-main"].plan(person.phone or "", Retry("busy", retry_after=120))
    expires = datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=100)
    notice = await approved(engine_store, expires_at=expires.isoformat())

    await engine.run_until_idle()
    clock.advance(130)
    await engine.run_until_idle()

    rows = await delivery_rows(engine_store, notice.id)
    assert [(r["state"], r["last_error"]) for r in rows] == [("skipped", "expired: busy")]
    assert len(channels["sms-main"].messages) == 1


@pytest.mark.parametrize("answer", [None, True, "sent", 200])
async def test_an_answer_that_is_no_send_result_is_retried_with_its_reason(
    engine_store: Store,
    engine_settings: Settings,
    channels: dict[str, RecordingChannel],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    answer: object,
) -> None:
    """Anything but Sent, Retry or Failed is a broken adapter: the delivery is retried with a reason naming what
    came back (the provider may have taken the message), never left for its lease to run out unexplained."""
    person = await resident(engine_store)
    adapter = Answers("sms-main", answer)
    engine = Engine(engine_store, engine_settings, {**channels, "sms-main": adapter}, clock=clock, jitter=lambda: 0.5)
    notice = await approved(engine_store)

    with caplog.at_level(logging.INFO):
        await engine.run_until_idle()

    (row,) = await delivery_rows(engine_store, notice.id)
    assert (row["state"], row["last_error"]) == ("queued", f"{NOT_AN_OUTCOME}: {type(answer).__name__}")
    assert "channel sms-main answered 1 of 1 messages with no send result" in caplog.text
    assert (person.phone or "")[-8:] not in caplog.text
    assert len(adapter.handed) == 1
