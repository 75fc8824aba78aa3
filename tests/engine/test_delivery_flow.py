"""From approval to the adapter: fan-out, idempotency keys, progress counts, notice states."""

from __future__ import annotations

from channels.base import Failed, Retry, SendResult, Sent
from notifier.domain.enums import NoticeState
from notifier.domain.models import SubscriberPatch
from notifier.engine import Engine
from notifier.engine.dispatch import with_receipted
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.databases import run_sql
from tests.engine.conftest import VILLAGE_A1, VILLAGE_B1, approved, delivery_rows, resident


async def test_approved_notice_reaches_every_resident_once(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    people = [await resident(engine_store) for _ in range(5)]
    notice = await approved(engine_store)

    await engine.run_until_idle()
    await engine.run_until_idle()

    sent = channels["sms-main"].messages
    assert sorted(m.recipient for m in sent) == sorted(p.phone for p in people)
    assert {m.idempotency_key for m in sent} == {f"n{notice.id}-s{p.id}-sms" for p in people}
    assert all(m.text == "空气质量预警：明日重度污染，减少外出。（生态环境分局）" for m in sent)
    final = await engine_store.get_notice(notice.id)
    assert final.state is NoticeState.DONE
    assert final.counts == {"sms": {"sent": 5}}
    assert final.reach == 1.0


async def test_counts_skipped_residents_at_fan_out(engine: Engine, engine_store: Store) -> None:
    await resident(engine_store)
    await resident(engine_store, channels=["email"])  # no e-mail address: nothing to send on
    withdrawn = await resident(engine_store)
    await engine_store.update_subscriber(withdrawn.id, SubscriberPatch(consent_withdrawn=True), "test")
    notice = await approved(engine_store)

    await engine.run_until_idle()

    row = await engine_store.db.fetch_one("get_notice", {"id": notice.id})
    assert row is not None
    assert (row["targeted"], row["skipped"]) == (1, 2)


async def test_all_mode_sends_on_every_channel_with_an_address(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    person = await resident(engine_store, email="li@example.org", channels=["email", "sms"])
    notice = await approved(engine_store, channels=["sms", "email"], channel_mode="all", severity="extreme")

    await engine.run_until_idle()

    assert channels["sms-main"].recipients() == [person.phone]
    assert channels["email"].recipients() == ["li@example.org"]
    assert channels["email"].messages[0].subject == "空气质量预警"
    assert "<h1>空气质量预警</h1>" in (channels["email"].messages[0].html or "")
    assert {d["channel"] for d in await delivery_rows(engine_store, notice.id)} == {"sms", "email"}


async def test_first_available_follows_the_residents_order(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    await resident(engine_store, email="a@example.org", channels=["email", "sms"])
    await resident(engine_store, email="b@example.org", channels=["sms", "email"])
    await resident(engine_store, area=VILLAGE_B1, channels=["wechat", "sms"])  # no openid: sms
    await approved(engine_store, channels=["sms", "email", "wechat"])

    await engine.run_until_idle()

    assert channels["email"].recipients() == ["a@example.org"]
    assert len(channels["sms-main"].messages) == 2
    assert channels["wechat"].messages == []


async def test_channel_opt_out_moves_to_the_next_channel(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    person = await resident(engine_store, email="c@example.org", channels=["sms", "email"])
    await engine_store.set_optouts(person.id, "channel", ["sms"], "test", held=[])
    await approved(engine_store, channels=["sms", "email"])

    await engine.run_until_idle()

    assert channels["sms-main"].messages == []
    assert channels["email"].recipients() == ["c@example.org"]


async def test_fan_out_repeated_from_the_start_creates_nothing_new(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel]
) -> None:
    for _ in range(3):
        await resident(engine_store, area=VILLAGE_A1)
    await resident(engine_store, area=VILLAGE_B1)
    notice = await approved(engine_store, target={"areas": [VILLAGE_A1]})
    await engine.run_until_idle()
    # as if a crash lost the cursor: the notice is approved again and fans out from the first id
    await run_sql(
        engine_store.db, "UPDATE notices SET state = 'approved', fanout_cursor = 0, fanout_lease_until = NULL"
    )

    await engine.run_until_idle()

    assert len(await delivery_rows(engine_store, notice.id)) == 3
    assert len(channels["sms-main"].messages) == 3


def test_a_batch_s_results_put_the_receipted_deliveries_among_the_answers_in_its_order() -> None:
    rows = [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]
    answers: list[SendResult] = [Sent("d1"), Retry("http 503"), Failed("invalid-number")]
    assert with_receipted(rows, {2: "d2"}, answers) == [Sent("d1"), Sent("d2"), Retry("http 503"),
                                                         Failed("invalid-number")]  # fmt: skip
    assert with_receipted(rows, {1: "d1", 2: "d2", 3: "d3", 4: "d4"}, []) == [Sent(f"d{i}") for i in (1, 2, 3, 4)]
    assert with_receipted(rows[:3], {}, answers) is answers
