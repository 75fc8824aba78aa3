"""Who may issue and read what: the rules the API and the command line apply alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, Forbidden, InvalidInput, NotFound
from notifier.domain.models import ApiKeyInfo, Notice, NoticeIn, PersonalDataScope
from notifier.store import Store


async def check_new_notice(store: Store, key: ApiKeyInfo, notice: NoticeIn, *, expires_loc: str = "expires_at") -> None:
    """The notice has not expired (``expires_loc`` names where its expiry came from); the key's department must hold
    the topic; every code in the target must exist; the target reaches only residents the key may read (its
    deliveries and preview would tell who they are)."""
    if notice.expires_at is not None and notice.expires_at <= datetime.now(UTC):
        message = f"{notice.expires_at.isoformat()} is already past: a notice that has expired reaches no one"
        raise InvalidInput(f"{expires_loc}: {message}", [FieldError(expires_loc, message)])
    department = await store.get_department(key.department)
    if notice.topic not in department.topics:
        raise Forbidden(
            f"department {key.department} may not issue on topic {notice.topic}; "
            f"its topics are {', '.join(department.topics) or 'none'}"
        )
    await store.check_codes("topic", [notice.topic], "topic")
    await store.check_areas(notice.target.areas, "target.areas")
    await store.check_codes("group", notice.target.groups, "target.groups")
    await store.check_codes("topic", notice.target.topics, "target.topics")
    scope = await personal_data_scope(store, key)
    if scope is not None:
        scope.check_groups(notice.target.groups, "target.groups")
        scope.check_topics(notice.target.topics, "target.topics")
    await _check_target_residents(store, scope, notice.target.subscribers)
    await check_rosters(store, key, notice)
    if notice.references is not None:
        try:
            earlier = await store.get_notice(notice.references)
        except NotFound:
            earlier = None
        if earlier is None or earlier.department != key.department:
            raise InvalidInput("unknown notice", [FieldError("references", "no such notice of this department")])


AREA_KINDS = ("bot", "bulletin")


async def check_rosters(store: Store, key: ApiKeyInfo, notice: NoticeIn) -> None:
    """A roster a notice targets or publishes must be its department's and not erased; a roster notice's
    texts are personal, so it goes to residents only; a publicity list names columns the roster has."""
    if notice.target.roster is not None:
        await _own_roster(store, key, notice.target.roster, "target.roster")
        area_kinds = [kind.value for kind in notice.channels if kind.value in AREA_KINDS]
        if area_kinds:
            raise InvalidInput(
                "a roster notice's texts are personal",
                [
                    FieldError(
                        "channels",
                        f"{', '.join(area_kinds)} reach areas, not a roster's recipients; "
                        "publish a roster on notice boards with publicity",
                    )
                ],
            )
    if notice.publicity is not None:
        roster = await _own_roster(store, key, notice.publicity.roster, "publicity.roster")
        known = set(json.loads(roster["columns"])) | {"name", "area"}
        errors = [
            FieldError(f"publicity.columns.{i}", f"the roster has no column {column} (nor is it name or area)")
            for i, column in enumerate(notice.publicity.columns)
            if column not in known
        ]
        errors += [
            FieldError(f"publicity.masks.{column}", "not one of the published columns")
            for column in notice.publicity.masks
            if column not in notice.publicity.columns
        ]
        if errors:
            raise InvalidInput(f"{len(errors)} invalid publicity field(s)", errors)


async def _own_roster(store: Store, key: ApiKeyInfo, roster_id: int, loc: str) -> dict[str, Any]:
    try:
        roster = await store.roster_row(roster_id)
    except NotFound:
        roster = None
    if roster is None or roster["department"] != key.department:
        raise InvalidInput("unknown roster", [FieldError(loc, "no such roster of this department")])
    if roster["erased_at"] is not None:
        raise InvalidInput("erased roster", [FieldError(loc, "the roster was erased after its retention")])
    return roster


async def _check_target_residents(store: Store, scope: PersonalDataScope | None, ids: list[int]) -> None:
    """Every resident named must be one the key reads; an unknown id and one outside the scope get the same
    answer, so the check tells nothing about residents the key may not read."""
    if not ids:
        return
    readable = await store.readable_subscriber_ids(ids, scope)
    errors = [
        FieldError(f"target.subscribers.{i}", "no such resident", "unknown_subscriber")
        for i, resident in enumerate(ids)
        if resident not in readable
    ]
    if errors:
        raise InvalidInput(f"{len(errors)} unknown resident(s) in target.subscribers", errors)


async def notice_for_key(store: Store, key: ApiKeyInfo, notice_id: int) -> Notice:
    """The notice if it belongs to the key's department; other departments' notices are not disclosed."""
    notice = await store.get_notice(notice_id)
    if notice.department != key.department:
        raise NotFound(f"no notice {notice_id}")
    return notice


async def personal_data_scope(store: Store, key: ApiKeyInfo) -> PersonalDataScope | None:
    """The residents the key may read: its department's topics and groups; None (everyone) for admins."""
    if key.role is Role.ADMIN:
        return None
    return PersonalDataScope.of(await store.get_department(key.department))
