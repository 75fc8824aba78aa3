"""Targeting is exact: areas by prefix, groups OR topics, combine=all, explicit ids, skips, preview."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.domain.models import NoticeIn, SubscriberPatch
from notifier.engine import Engine, preview
from notifier.store import Store
from tests.engine.conftest import COUNTY, TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, approved, resident


@pytest.fixture
async def people(engine_store: Store) -> dict[str, int]:
    """Residents named by what sets them apart."""
    specs: dict[str, dict[str, Any]] = {
        "a1_dibao": {"area": VILLAGE_A1, "groups": ["dibao"]},
        "a1_air": {"area": VILLAGE_A1, "topics": ["air-quality"]},
        "a1_both": {"area": VILLAGE_A1, "groups": ["dibao"], "topics": ["air-quality"]},
        "a1_none": {"area": VILLAGE_A1},
        "a2_elderly": {"area": VILLAGE_A2, "groups": ["elderly-alone"]},
        "town_a_dibao": {"area": TOWN_A, "groups": ["dibao"]},
        "b1_dibao": {"area": VILLAGE_B1, "groups": ["dibao"]},
        "b_air": {"area": TOWN_B, "topics": ["air-quality"]},
    }
    return {name: (await resident(engine_store, **spec)).id for name, spec in specs.items()}


CASES = [
    ({"areas": [TOWN_A]}, {"a1_dibao", "a1_air", "a1_both", "a1_none", "a2_elderly", "town_a_dibao"}),
    ({"areas": [VILLAGE_A1]}, {"a1_dibao", "a1_air", "a1_both", "a1_none"}),
    ({"areas": [VILLAGE_A2, VILLAGE_B1]}, {"a2_elderly", "b1_dibao"}),
    ({"groups": ["dibao"]}, {"a1_dibao", "a1_both", "town_a_dibao", "b1_dibao"}),
    ({"areas": [TOWN_A], "groups": ["dibao"]}, {"a1_dibao", "a1_both", "town_a_dibao"}),
    (
        {"areas": [TOWN_A], "groups": ["dibao"], "topics": ["air-quality"]},
        {"a1_dibao", "a1_air", "a1_both", "town_a_dibao"},
    ),
    ({"areas": [COUNTY], "groups": ["dibao"], "topics": ["air-quality"], "combine": "all"}, {"a1_both"}),
    ({"topics": ["air-quality"]}, {"a1_air", "a1_both", "b_air"}),
    ({"groups": ["elderly-alone", "disabled"]}, {"a2_elderly"}),
    ({"subscribers": ["b_air", "a1_none"]}, {"b_air", "a1_none"}),
    ({"areas": [VILLAGE_B1], "subscribers": ["a1_none"]}, {"b1_dibao", "a1_none"}),
]


@pytest.mark.parametrize(("target", "expected"), CASES)
async def test_target_selects_exactly(
    engine: Engine, engine_store: Store, people: dict[str, int], target: dict[str, Any], expected: set[str]
) -> None:
    if "subscribers" in target:
        target = {**target, "subscribers": [people[name] for name in target["subscribers"]]}
    notice = await approved(engine_store, target=target)

    await engine.run_until_idle()

    deliveries, _ = await engine_store.list_deliveries(notice.id, None, 100)
    names = {name for name, ident in people.items() if ident in {d.subscriber_id for d in deliveries}}
    assert names == expected


async def test_opted_out_withdrawn_and_erased_residents_are_skipped(
    engine: Engine, engine_store: Store, people: dict[str, int]
) -> None:
    await engine_store.update_subscriber(people["a1_air"], SubscriberPatch(opt_out_topics=["air-quality"]), "t")
    await engine_store.update_subscriber(people["a1_both"], SubscriberPatch(consent_withdrawn=True), "t")
    await engine_store.delete_subscriber(people["a1_none"], "t")
    notice = await approved(engine_store, target={"areas": [VILLAGE_A1]})

    await engine.run_until_idle()

    deliveries, _ = await engine_store.list_deliveries(notice.id, None, 100)
    assert [d.subscriber_id for d in deliveries] == [people["a1_dibao"]]
    row = await engine_store.db.fetch_one("get_notice", {"id": notice.id})
    assert row is not None and (row["targeted"], row["skipped"]) == (1, 3)


async def test_preview_counts_residents_and_deliveries_per_town(engine_store: Store, people: dict[str, int]) -> None:
    await engine_store.update_subscriber(
        people["b_air"], SubscriberPatch(email="b@example.org", channels=["email", "sms"]), "t"
    )
    await engine_store.update_subscriber(people["a1_none"], SubscriberPatch(opt_out_channels=["sms"]), "t")
    notice = NoticeIn.model_validate(
        {"topic": "air-quality", "title": "t", "body": "b", "target": {"areas": [COUNTY]}, "channels": ["sms", "email"]}
    )

    summary = await preview(engine_store, notice)

    assert summary["residents"] == 8
    assert summary["skipped"] == 1
    assert summary["deliveries"] == {"sms": 6, "email": 1}
    assert summary["towns"][TOWN_A] == {"residents": 6, "reached": 5, "skipped": 1, "deliveries": {"sms": 5},
                                        "skipped_by_reason": {"channel_opt_out": 1}, "held_by_quiet_hours": 0}
    assert summary["skipped_by_reason"] == {"channel_opt_out": 1}
    assert summary["towns"][TOWN_B]["deliveries"] == {"sms": 1, "email": 1}
    deliveries = await engine_store.db.fetch_value("delivery_counts", {"notice_id": 1})
    assert deliveries is None  # a preview writes no delivery


async def test_update_goes_to_exactly_the_residents_the_earlier_notice_reached(
    engine: Engine, engine_store: Store, people: dict[str, int]
) -> None:
    first = await approved(engine_store, target={"groups": ["dibao"]})
    await engine.run_until_idle()
    await engine_store.update_subscriber(people["a1_air"], SubscriberPatch(groups=["dibao"]), "t")  # joined later
    update = await approved(
        engine_store, target={"subscribers": [people["b_air"]], "referenced": True}, references=first.id
    )

    await engine.run_until_idle()

    reached_first = await subscriber_ids(engine_store, first.id)
    reached_update = await subscriber_ids(engine_store, update.id)
    assert reached_first == {people[n] for n in ("a1_dibao", "a1_both", "town_a_dibao", "b1_dibao")}
    assert reached_update == reached_first | {people["b_air"]}


async def subscriber_ids(store: Store, notice_id: int) -> set[int]:
    rows = await store.db.fetch_all("list_deliveries", {"notice_id": notice_id, "after": 0, "limit": 1000})
    return {r["subscriber_id"] for r in rows}
