"""Who a notice reaches, in general: the fan-out's SQL against the target rule read straight from its docstring.

Rule (notifier.domain.models.Target): residents in ``areas`` (a code covers the codes under it; none: the
whole county) AND in any of ``groups`` OR subscribed to any of ``topics`` (``combine="all"``: a group AND a
topic; neither given: everyone in the areas), plus every resident listed in ``subscribers``. Eligible among
them: those who have not opted out of the notice's topic.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from notifier.domain.models import MAX_ID, SubscriberIn, SubscriberPatch
from notifier.store import Store
from subscribers.targeting import plan_target
from tests.conftest import COUNTY, SMALL_CATALOG, TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, seed_catalog
from tests.databases import open_migrated
from tests.properties import FEW

VILLAGES = [VILLAGE_A1, VILLAGE_A2, VILLAGE_B1]
GROUPS = [code for code, _ in SMALL_CATALOG["groups"]]
TOPICS = [code for code, _ in SMALL_CATALOG["topics"]]
NOTICE_TOPIC = "air-quality"


@dataclass(frozen=True)
class Resident:
    area_code: str
    groups: list[str]
    topics: list[str]
    opted_out: bool


residents = st.lists(
    st.builds(
        Resident,
        area_code=st.sampled_from(VILLAGES),
        groups=st.lists(st.sampled_from(GROUPS), unique=True, max_size=2),
        topics=st.lists(st.sampled_from(TOPICS), unique=True, max_size=2),
        opted_out=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
targets = st.fixed_dictionaries(
    {
        "areas": st.lists(st.sampled_from([COUNTY, TOWN_A, TOWN_B, *VILLAGES]), unique=True, max_size=2),
        "groups": st.lists(st.sampled_from([*GROUPS, "no-such-group"]), unique=True, max_size=2),
        "topics": st.lists(st.sampled_from([*TOPICS, "no-such-topic"]), unique=True, max_size=2),
        "subscribers": st.lists(st.integers(min_value=1, max_value=10), unique=True, max_size=3),
        "combine": st.sampled_from(["any", "all"]),
    }
)


def reference(people: list[Resident], target: dict[str, Any]) -> dict[int, bool]:
    """id -> eligible, for every resident the rule matches."""
    matched: dict[int, bool] = {}
    has_rule = bool(target["areas"] or target["groups"] or target["topics"])
    for number, person in enumerate(people, start=1):
        in_areas = not target["areas"] or any(person.area_code.startswith(area) for area in target["areas"])
        in_group = bool(set(person.groups) & set(target["groups"]))
        in_topic = bool(set(person.topics) & set(target["topics"]))
        if not target["groups"] and not target["topics"]:
            chosen = True
        elif target["combine"] == "all":
            chosen = (not target["groups"] or in_group) and (not target["topics"] or in_topic)
        else:
            chosen = in_group or in_topic
        if (has_rule and in_areas and chosen) or number in target["subscribers"]:
            matched[number] = not person.opted_out
    return matched


async def fan_out_match(people: list[Resident], target: dict[str, Any]) -> dict[int, bool]:
    with tempfile.TemporaryDirectory() as folder:
        db = await open_migrated(f"sqlite:///{folder}/t.db")
        try:
            store = Store(db)
            await seed_catalog(store)
            for number, person in enumerate(people, start=1):
                data = SubscriberIn(
                    name=f"居民{number}", area_code=person.area_code, groups=person.groups, topics=person.topics
                )
                created = await store.create_subscriber(data, "test")
                assert created.id == number
                if person.opted_out:
                    await store.update_subscriber(number, SubscriberPatch(opt_out_topics=[NOTICE_TOPIC]), "test")
            plan = plan_target(
                target,
                NOTICE_TOPIC,
                None,
                await store.codes_to_ids("group", target["groups"]),
                await store.codes_to_ids("topic", target["topics"]),
            )
            async with db.transaction():
                for name in ("fanout_create_matched", "fanout_clear_matched"):
                    await db.execute(name)
                await db.execute("fanout_match", {**plan.params(), "after": 0, "upto": MAX_ID})
                cursor = await db.writer.execute("SELECT id, eligible FROM temp.fanout_matched")  # type: ignore[attr-defined]
                rows = await cursor.fetchall()
            return {int(row["id"]): bool(row["eligible"]) for row in rows}
        finally:
            await db.close()


@FEW
@given(people=residents, target=targets)
def test_the_fan_out_matches_exactly_the_target_rule(people: list[Resident], target: dict[str, Any]) -> None:
    assert asyncio.run(fan_out_match(people, target)) == reference(people, target)


@FEW
@given(people=residents, target=targets, extra=st.sampled_from(["groups", "topics", "subscribers"]))
def test_widening_an_any_target_never_loses_anyone(people: list[Resident], target: dict[str, Any], extra: str) -> None:
    narrow = {**target, "combine": "any"}
    wider = {**narrow, extra: [*narrow[extra], {"groups": GROUPS[0], "topics": TOPICS[0], "subscribers": 1}[extra]]}
    if wider[extra] == narrow[extra] or len(set(wider[extra])) != len(wider[extra]):
        return
    if extra != "subscribers" and not narrow["groups"] and not narrow["topics"]:
        return  # naming a first group or topic narrows "everyone in the areas"
    assert set(reference(people, narrow)) <= set(reference(people, wider))
