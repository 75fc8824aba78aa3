"""Worker heartbeats and receipts after a crash: a dead worker's leases come back before they expire, and a
delivery whose receipt is already stored is recorded from it, never handed to the provider again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from channels.base import Channel, Sent
from channels.failover import FailoverChannel, FailoverOptions
from notifier.config import Settings
from notifier.domain.models import Notice, Subscriber
from notifier.engine import Engine, ReceiptOutcome, record_receipt
from notifier.engine.dispatch import dispatch_batch
from notifier.engine.housekeeping import housekeeping
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import open_migrated
from tests.engine.conftest import (
    CHANNELS,
    COUNTY,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_B1,
    approved,
    delivery_rows,
    resident,
    seed,
)
from tests.engine.test_area_deliveries import AREA_CHANNELS, RecordingAreaChannel, area_settings

LEASE = 600.0  # far longer than any test runs: only a dead heartbeat can free these leases
HEARTBEAT = 2.0


def settings_for(base: Settings) -> Settings:
    return base.model_copy(
        update={"engine": base.engine.model_copy(update={"lease_seconds": LEASE, "heartbeat_seconds": HEARTBEAT})}
    )


def adapters(**options: Any) -> dict[str, RecordingChannel]:
    return {alias: RecordingChannel(alias, **options) for alias in CHANNELS}


async def states(store: Store, notice_id: int) -> list[str]:
    return [row["state"] for row in await delivery_rows(store, notice_id)]


async def crash_mid_send(engine: Engine, channel: RecordingChannel) -> None:
    """Run one pass of ``engine`` until its adapter holds a batch, then kill the pass there."""
    channel.hold()
    task = asyncio.create_task(engine.run_once())
    await channel.entered.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def crashed_notice(
    store: Store, settings: Settings, residents: int
) -> tuple[list[Subscriber], Notice, FakeClock]:
    """``residents`` residents and an approved notice to them, whose first batch (on ``sms-main``, message ids of
    the adapter's own) was in the adapter's hands when its worker crashed; the engine's clock."""
    people = [await resident(store) for _ in range(residents)]
    notice = await approved(store)
    clock = FakeClock()
    first = adapters(own_ids=True)
    await crash_mid_send(Engine(store, settings, dict(first), clock=clock), first["sms-main"])
    return people, notice, clock


async def test_delivery_with_a_stored_receipt_is_recorded_from_it_not_sent_again(
    engine_store: Store, engine_settings: Settings
) -> None:
    settings = settings_for(engine_settings)
    people, notice, clock = await crashed_notice(engine_store, settings, 3)
    delivery_of = {row["subscriber_id"]: row["id"] for row in await delivery_rows(engine_store, notice.id)}
    # the provider's word on two messages arrived before the crashed worker could record their sends
    for person, status in ((people[0], "delivered"), (people[1], "submitted")):
        outcome = await record_receipt(engine_store, "sms-main", f"sms-main-d{delivery_of[person.id]}", status)
        assert outcome is ReceiptOutcome.UNKNOWN  # kept as an early receipt

    clock.advance(LEASE + 1)
    second = adapters(own_ids=True)
    await Engine(engine_store, settings, dict(second), clock=clock).run_until_idle()

    assert second["sms-main"].recipients() == [people[2].phone]
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1, "sent": 2}}


class AskedChannel(RecordingChannel):
    """A recording channel noting the deliveries it is asked the receipt ids of, in the batch's order."""

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.asked: list[int] = []

    def receipt_ids(self, delivery_id: int, resend: int = 0) -> Sequence[str]:
        self.asked.append(delivery_id)
        return super().receipt_ids(delivery_id, resend)


async def test_a_batch_with_receipts_for_some_deliveries_records_each_from_its_own_source(
    engine_store: Store, engine_settings: Settings
) -> None:
    """Five deliveries claimed again after a crash, receipts kept for the 2nd and the 4th: those two are recorded
    sent from their receipts and not handed to the gateway; the 1st, 3rd and 5th are sent, each recorded with the
    gateway's answer for its own message (the answers come back three for a batch of five: ``with_receipted``
    must slot them in around the receipted ones)."""
    settings = settings_for(engine_settings)
    people, notice, clock = await crashed_notice(engine_store, settings, 5)
    phone_of = {person.id: person.phone for person in people}
    rows = sorted(await delivery_rows(engine_store, notice.id), key=lambda row: row["id"])
    ids = [row["id"] for row in rows]
    receipted = {ids[1], ids[3]}
    for delivery_id in sorted(receipted):
        outcome = await record_receipt(engine_store, "sms-main", f"sms-main-d{delivery_id}", "submitted")
        assert outcome is ReceiptOutcome.UNKNOWN  # kept as an early receipt: the crashed send is not recorded

    clock.advance(LEASE + 1)
    second: dict[str, Channel] = {**adapters(), "sms-main": AskedChannel("sms-main", own_ids=True)}
    gateway = second["sms-main"]
    assert isinstance(gateway, AskedChannel)
    for row in rows:  # the gateway's own message ids, unlike the ids announced for receipts
        gateway.plan(phone_of[row["subscriber_id"]], Sent(f"gw-{row['id']}"))
    engine = Engine(engine_store, settings, second, clock=clock)
    await housekeeping(engine.ctx)  # the crashed worker's leases taken back
    handled, unrecorded = await dispatch_batch(engine.ctx, "sms-main", None)
    assert handled == 5 and unrecorded is not None
    await unrecorded.write()  # the batch's results, as the worker writes them

    assert gateway.asked == ids  # one batch, claimed in this order: the receipted ones between the others
    assert [m.delivery_id for m in gateway.messages] == [ids[0], ids[2], ids[4]]
    assert [m.recipient for m in gateway.messages] == [phone_of[rows[i]["subscriber_id"]] for i in (0, 2, 4)]
    after = {row["id"]: row for row in await delivery_rows(engine_store, notice.id)}
    assert {i: (after[i]["state"], after[i]["provider_message_id"], after[i]["attempts"]) for i in ids} == {
        i: ("sent", f"sms-main-d{i}" if i in receipted else f"gw-{i}", 2) for i in ids
    }


def through_failover(base: Settings) -> tuple[Settings, Any]:
    """``sms-main`` a failover over two gateways of their own ids, ``gw-a`` first; the adapters as loaded."""
    channels = {**base.channels, "sms-main": {"kind": "sms", "type": "failover", "aliases": ["gw-a", "gw-b"]},
                "gw-a": {"kind": "sms", "type": "recording", "order": 5},
                "gw-b": {"kind": "sms", "type": "recording", "order": 6}}  # fmt: skip
    settings = base.model_copy(update={"channels": Settings.model_validate({"channels": channels}).channels})

    def build() -> dict[str, Channel]:
        built: dict[str, Channel] = {**adapters(), "gw-a": RecordingChannel("gw-a", own_ids=True),
                                     "gw-b": RecordingChannel("gw-b", own_ids=True)}  # fmt: skip
        failover = FailoverChannel("sms-main", FailoverOptions(aliases=["gw-a", "gw-b"]))
        failover.bind(built)
        built["sms-main"] = failover
        return built

    return settings, build


async def test_a_failover_delivery_with_a_receipt_kept_under_its_member_is_recorded_from_it(
    engine_store: Store, engine_settings: Settings
) -> None:
    """The member's receipt is kept once, under the member's alias; a failover delivery claimed again after a
    crash finds it there and is recorded from it, not handed to a gateway again."""
    settings, build = through_failover(settings_for(engine_settings))
    person = await resident(engine_store)
    notice = await approved(engine_store)
    clock = FakeClock()
    first = build()
    gateway = first["gw-a"]
    assert isinstance(gateway, RecordingChannel)
    await crash_mid_send(Engine(engine_store, settings, first, clock=clock), gateway)
    [row] = await delivery_rows(engine_store, notice.id)
    assert (row["alias"], row["state"]) == ("sms-main", "sending")
    outcome = await record_receipt(engine_store, "gw-a", f"gw-a-d{row['id']}", "delivered",
                                   owners=settings.failover_owners("gw-a"))  # fmt: skip
    assert outcome is ReceiptOutcome.UNKNOWN

    clock.advance(LEASE + 1)
    second = build()
    await Engine(engine_store, settings, second, clock=clock).run_until_idle()

    assert all(c.messages == [] for c in second.values() if isinstance(c, RecordingChannel))
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1}}
    assert person.id == row["subscriber_id"]


async def test_the_engine_applies_a_members_receipt_to_the_failover_delivery(
    engine_store: Store, engine_settings: Settings
) -> None:
    """Engine.record_receipt looks under the failover aliases sending through the alias, as the hooks do."""
    settings, build = through_failover(settings_for(engine_settings))
    await resident(engine_store)
    notice = await approved(engine_store)
    engine = Engine(engine_store, settings, build(), clock=FakeClock())
    await engine.run_until_idle()
    [row] = await delivery_rows(engine_store, notice.id)
    assert (row["alias"], row["state"]) == ("sms-main", "sent")

    assert await engine.record_receipt("gw-a", f"gw-a-d{row['id']}", "delivered") is ReceiptOutcome.APPLIED
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"delivered": 1}}


async def test_leases_of_a_worker_whose_heartbeat_stopped_are_taken_back_before_they_expire(
    engine_store: Store, engine_settings: Settings
) -> None:
    settings = settings_for(engine_settings)
    await resident(engine_store)
    notice = await approved(engine_store)
    clock = FakeClock()
    first = adapters()
    stuck = Engine(engine_store, settings, dict(first), clock=clock)
    await crash_mid_send(stuck, first["sms-main"])
    second = adapters()
    other = Engine(engine_store, settings, dict(second), clock=clock)

    clock.advance(HEARTBEAT * 2.5)
    await stuck.heartbeat()  # still alive: a beat within the last few intervals keeps its leases
    clock.advance(HEARTBEAT * 2.5)
    await other.run_until_idle()
    assert second["sms-main"].messages == []
    assert await states(engine_store, notice.id) == ["sending"]

    clock.advance(HEARTBEAT * 5)  # no beat since: dead, 10 s into a 600 s lease
    await other.run_until_idle()
    assert len(second["sms-main"].messages) == 1
    assert await states(engine_store, notice.id) == ["sent"]
    assert await engine_store.registered_workers() == [other.ctx.worker]


async def test_fan_out_held_by_a_dead_worker_is_taken_over(engine_store: Store, engine_settings: Settings) -> None:
    settings = settings_for(engine_settings)
    await resident(engine_store)
    notice = await approved(engine_store)
    clock = FakeClock()
    dead = Engine(engine_store, settings, dict(adapters()), clock=clock)
    await dead.heartbeat()
    assert await engine_store.claim_notice_for_fanout(dead.ctx.worker, clock(), LEASE) is not None

    clock.advance(HEARTBEAT * 5)
    channels = adapters()
    await Engine(engine_store, settings, dict(channels), clock=clock).run_until_idle()

    assert len(channels["sms-main"].messages) == 1
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"sent": 1}}


async def test_cleanly_stopped_engine_gives_its_leases_back(engine_store: Store, engine_settings: Settings) -> None:
    settings = settings_for(engine_settings)
    await resident(engine_store)
    notice = await approved(engine_store)
    first = adapters()
    first["sms-main"].hold()
    engine = Engine(engine_store, settings, dict(first))
    await engine.start()
    await first["sms-main"].entered.wait()
    await engine.stop(grace=0.01)  # the held batch is abandoned

    assert await states(engine_store, notice.id) == ["queued"]
    assert await engine_store.registered_workers() == []
    second = adapters()
    await Engine(engine_store, settings, dict(second)).run_until_idle()
    assert len(second["sms-main"].messages) == 1


async def test_area_deliveries_of_a_dead_worker_are_taken_back(tmp_path: Path) -> None:
    settings = settings_for(area_settings(tmp_path))
    db = await open_migrated(settings.database.url)
    try:
        store = Store(db)
        await seed(store)
        notice = await approved(store, target={"areas": [COUNTY]}, channels=["bulletin"])
        clock = FakeClock()

        def build() -> tuple[Engine, RecordingAreaChannel]:
            channels: dict[str, Channel] = {alias: RecordingChannel(alias) for alias in AREA_CHANNELS}
            board = channels["board"] = RecordingAreaChannel("board")
            return Engine(store, settings, channels, clock=clock), board

        stuck, stuck_board = build()
        await crash_mid_send(stuck, stuck_board)  # the dead worker held the printouts of every village
        clock.advance(HEARTBEAT * 5)
        other, board = build()
        await other.run_until_idle()

        assert sorted(board.recipients()) == [VILLAGE_A1, VILLAGE_A2, VILLAGE_B1]
        assert (await store.get_notice(notice.id)).counts == {"bulletin": {"sent": 3}}
    finally:
        await db.close()
