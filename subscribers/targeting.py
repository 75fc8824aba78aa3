"""Who a notice reaches, and on which channel: the rules, as SQL parameters and pure functions.

Target rule (``notifier.domain.models.Target``): residents in ``areas`` (a code covers every code
under it; none means the whole county) AND in one of ``groups`` OR subscribed to one of ``topics``
(``combine="all"``: in a group AND subscribed to a topic; neither given: everyone in the areas),
plus everyone in ``subscribers``. A target naming only ``subscribers`` means exactly those.

Rosters: a target with ``roster`` reaches only the residents (and statutory contacts) its rows matched;
with areas, groups or topics, only those of them the rule also matches. A statutory contact (a phone
number from a roster, ``consent_basis = 'statutory'``) is never reached by a target without a roster.

Follow-ups: a notice whose ``references`` names an earlier notice and whose target carries
``"referenced": true`` goes to exactly the residents the earlier notice reached (a delivery sent or
delivered), plus any explicit ``subscribers``; its areas, groups and topics, if any, widen it.

Skipped (matched but not messaged, counted in ``notices.skipped``): erased residents, withdrawn
consent, an opt-out of the notice's topic, or no channel left after opt-outs and missing addresses.

Channels: the notice's channels in the resident's preference order (``subscribers.channels``),
kept only where the resident has an address and has not opted out of the channel. Mode
``first-available`` sends on the first and falls back to the next; ``all`` sends on every one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ADDRESS_FIELD = {"sms": "phone", "email": "email", "wechat": "wechat_openid", "wecom": "wecom_userid"}
REFERENCED_FLAG = "referenced"


@dataclass(frozen=True)
class TargetPlan:
    """A target resolved to ids, ready to bind to the ``fanout_match`` query."""

    topic: str
    areas: list[str]
    group_ids: list[int]
    topic_ids: list[int]
    subscriber_ids: list[int]
    has_groups: bool
    has_topics: bool
    combine_all: bool
    referenced_id: int | None
    roster_id: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "areas": json.dumps(self.areas),
            "group_ids": json.dumps(self.group_ids),
            "topic_ids": json.dumps(self.topic_ids),
            "subscriber_ids": json.dumps(self.subscriber_ids),
            "has_rule": bool(self.areas or self.has_groups or self.has_topics or self.roster_id is not None),
            "has_groups": self.has_groups,
            "has_topics": self.has_topics,
            "combine_all": self.combine_all,
            "referenced_id": self.referenced_id,
            "roster_id": self.roster_id,
        }


def plan_target(
    target: Mapping[str, Any], topic: str, references: int | None, group_ids: list[int], topic_ids: list[int]
) -> TargetPlan:
    """Bind a target (as stored: a JSON object) to ids.

    ``has_groups`` follows the codes the target names, not the ids found: a group with no id
    matches nobody rather than widening the target to everyone.
    """
    return TargetPlan(
        topic=topic,
        areas=list(target.get("areas") or []),
        group_ids=group_ids,
        topic_ids=topic_ids,
        subscriber_ids=[int(i) for i in target.get("subscribers") or []],
        has_groups=bool(target.get("groups")),
        has_topics=bool(target.get("topics")),
        combine_all=target.get("combine") == "all",
        referenced_id=references if target.get(REFERENCED_FLAG) else None,
        roster_id=int(target["roster"]) if target.get("roster") is not None else None,
    )


def available_channels(
    preferences: Sequence[str], requested: Sequence[str], addresses: Mapping[str, str | None], refused: Sequence[str]
) -> list[str]:
    """The resident's usable channels for a notice, in the resident's order."""
    return [
        kind
        for kind in preferences
        if kind in requested and kind not in refused and addresses.get(ADDRESS_FIELD.get(kind, ""))
    ]


def next_channel(
    preferences: Sequence[str],
    requested: Sequence[str],
    addresses: Mapping[str, str | None],
    refused: Sequence[str],
    tried: Sequence[str],
) -> str | None:
    """The first usable channel not tried yet for this notice, or None when all are used up."""
    for kind in available_channels(preferences, requested, addresses, refused):
        if kind not in tried:
            return kind
    return None
