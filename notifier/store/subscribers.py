"""Residents: contact points, area, groups, topics, preferences, consent and opt-outs."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from notifier.domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from notifier.domain.models import PersonalDataScope, QuietHours, Subscriber, SubscriberIn, SubscriberPatch
from notifier.domain.optout_sources import how_the_resident_opted_out, made_by_resident
from notifier.store.catalog import CatalogRepository
from notifier.store.common import area_range, decode_cursor, dumps, now_iso, page
from notifier.store.database import Row

_CONTACT_FIELDS = ("name", "phone", "email", "wechat_openid", "wecom_userid", "area_code", "language")


def subscriber_row(data: SubscriberIn, now: str) -> dict[str, Any]:
    """The parameters of the ``insert_subscriber`` block for a validated resident (also the bulk importer's)."""
    return {
        **{field: getattr(data, field) for field in _CONTACT_FIELDS},
        "external_id": data.external_id,
        "channels": dumps(list(data.channels)),
        "quiet_start": data.quiet_hours.start if data.quiet_hours else None,
        "quiet_end": data.quiet_hours.end if data.quiet_hours else None,
        "consent_source": data.consent_source,
        "consent_at": now,
        "now": now,
    }


AUDITED_FIELDS = (
    "name",
    "phone",
    "email",
    "wechat_openid",
    "wecom_userid",
    "external_id",
    "area_code",
    "groups",
    "topics",
    "channels",
    "language",
    "quiet_hours",
    "consent_withdrawn_at",
    "opt_out_topics",
    "opt_out_channels",
)


def audited(subscriber: Subscriber) -> dict[str, Any]:
    """The resident's fields as the audit log records them (masked by the log itself, audit_chain.mask_detail)."""
    data = subscriber.model_dump(mode="json", include=set(AUDITED_FIELDS) - {"consent_withdrawn_at"})
    data["consent_withdrawn_at"] = subscriber.consent.model_dump(mode="json")["withdrawn_at"]
    return {name: data[name] for name in AUDITED_FIELDS}


def changes_of(before: Subscriber | None, after: Subscriber | None) -> dict[str, dict[str, Any]]:
    """``{"before": {...}, "after": {...}}`` with the fields that differ (all of them on creation or erasure)."""
    old = audited(before) if before is not None else {}
    new = audited(after) if after is not None else {}
    changed = [name for name in AUDITED_FIELDS if old.get(name) != new.get(name)]
    return {
        "before": {name: old[name] for name in changed if name in old},
        "after": {name: new[name] for name in changed if name in new},
    }


def creation_detail(created: Subscriber) -> dict[str, object]:
    """The audit detail of a resident's creation, as stored: the area, and every field set (``changes_of``)."""
    return {"area": created.area_code, **changes_of(None, created)}


def scope_params(scope: PersonalDataScope | None) -> dict[str, Any]:
    """The parameters a scoped query filters residents with."""
    return {
        "scoped": scope is not None,
        "scope_topics": dumps(sorted(scope.topics) if scope else []),
        "scope_groups": dumps(sorted(scope.groups) if scope else []),
    }


def _as_seen(subscriber: Subscriber, scope: PersonalDataScope | None) -> Subscriber:
    return subscriber if scope is None else scope.redact(subscriber)


# a resident's own settings: once they saved them on their page, a department's key does not change them
RESIDENT_SETTINGS = ("channels", "quiet_hours", "language")


def _setting(subscriber: Subscriber, field: str) -> Any:
    """The setting as a patch gives it (``model_dump`` of a SubscriberPatch: quiet hours as a dict)."""
    value = getattr(subscriber, field)
    return value.model_dump() if isinstance(value, QuietHours) else value


class SubscriberRepository(CatalogRepository):
    """Every read and change takes the caller's PersonalDataScope (None: everyone, as for admins)."""

    async def create_subscriber(
        self, data: SubscriberIn, actor: str, scope: PersonalDataScope | None = None
    ) -> Subscriber:
        async with self.db.transaction():
            await self._check_references(data.area_code, data.groups, data.topics)
            if scope is not None:
                scope.check_groups(data.groups, "groups")
                scope.check_topics(data.topics, "topics")
            await self._check_unique(data.phone, data.external_id, None, scope)
            row = await self.db.fetch_one("insert_subscriber", subscriber_row(data, now_iso()))
            assert row is not None
            subscriber_id = int(row["id"])
            await self._set_memberships(subscriber_id, data.groups, data.topics)
            created = await self.get_subscriber(subscriber_id)
            await self.audit(actor, "subscriber.create", "subscriber", subscriber_id, creation_detail(created))
        return _as_seen(created, scope)

    async def update_subscriber(
        self,
        subscriber_id: int,
        patch: SubscriberPatch,
        actor: str,
        scope: PersonalDataScope | None = None,
        *,
        settings_by_resident: bool = False,
    ) -> Subscriber:
        """``settings_by_resident``: the resident saved their own settings (their page), which makes the channels,
        quiet hours and language theirs (``RESIDENT_SETTINGS``)."""
        async with self.db.transaction():
            current = await self._get_in_scope(subscriber_id, scope)
            changes = patch.model_dump(exclude_unset=True)
            for field in ("name", "area_code", "channels", "language"):
                if field in changes and changes[field] is None:
                    raise InvalidInput("field cannot be null", [FieldError(field, "may not be null")])
            await self._check_references(
                changes.get("area_code") or current.area_code, changes.get("groups") or [], changes.get("topics") or []
            )
            if scope is not None and changes.get("groups") is not None:
                scope.check_groups(changes["groups"], "groups")
                # the groups the caller cannot see are kept, not replaced
                changes["groups"] = sorted(set(current.groups) - scope.groups | set(changes["groups"]))
            if scope is not None and changes.get("topics") is not None:
                scope.check_topics(changes["topics"], "topics")
                # another department's topics are the resident's choice, kept as they are
                changes["topics"] = sorted(set(current.topics) - scope.topics | set(changes["topics"]))
            if scope is not None and changes.get("opt_out_topics") is not None:
                scope.check_topics(changes["opt_out_topics"], "opt_out_topics")
            if scope is not None:
                await self._check_residents_optouts_kept(subscriber_id, current, changes, scope)
                await self._check_residents_settings_kept(subscriber_id, current, changes)
                taking_back = "consent_withdrawn" in changes and not changes["consent_withdrawn"]  # false or null
                if taking_back and current.consent.withdrawn_at is not None:
                    raise Forbidden(
                        "consent_withdrawn: the resident withdrew their consent on "
                        f"{current.consent.withdrawn_at.date().isoformat()}; a department's key records a withdrawal "
                        "but does not take one back. The resident gives consent again by subscribing again; an "
                        "admin may correct the record"
                    )
            await self._check_unique(changes.get("phone"), None, subscriber_id, scope)
            merged: dict[str, Any] = {f: changes.get(f, getattr(current, f)) for f in _CONTACT_FIELDS}
            quiet = patch.quiet_hours if "quiet_hours" in changes else current.quiet_hours
            withdrawn = current.consent.withdrawn_at.isoformat() if current.consent.withdrawn_at else None
            if "consent_withdrawn" in changes:
                withdrawn = now_iso() if patch.consent_withdrawn else None
            await self.db.execute(
                "update_subscriber",
                {
                    **merged,
                    "id": subscriber_id,
                    "channels": dumps(changes.get("channels", current.channels)),
                    "quiet_start": quiet.start if quiet else None,
                    "quiet_end": quiet.end if quiet else None,
                    "consent_withdrawn_at": withdrawn,
                    "now": now_iso(),
                },
            )
            await self._set_memberships(subscriber_id, changes.get("groups"), changes.get("topics"))
            if settings_by_resident:
                await self.db.execute("mark_resident_settings_chosen", {"id": subscriber_id, "now": now_iso()})
            for kind, held in (("topic", current.opt_out_topics), ("channel", current.opt_out_channels)):
                values = changes.get(f"opt_out_{kind}s")
                if values is not None:
                    within = scope.topics if scope is not None and kind == "topic" else None
                    await self.set_optouts(subscriber_id, kind, values, f"api:{actor}", held=held, within=within)
            updated = await self.get_subscriber(subscriber_id)
            detail: dict[str, object] = {"fields": sorted(changes), **changes_of(current, updated)}
            await self.audit(actor, "subscriber.update", "subscriber", subscriber_id, detail)
        return _as_seen(updated, scope)

    async def _check_residents_optouts_kept(
        self, subscriber_id: int, current: Subscriber, changes: dict[str, Any], scope: PersonalDataScope
    ) -> None:
        """Forbidden when a department's change would clear an opt-out the resident made themselves
        (``notifier.domain.optout_sources``)."""
        taken_back: dict[tuple[str, str], str] = {}
        for kind, held in (("topic", current.opt_out_topics), ("channel", current.opt_out_channels)):
            values = changes.get(f"opt_out_{kind}s")
            if values is None:
                continue
            for value in set(held) - set(values):
                if kind == "channel" or value in scope.topics:
                    taken_back[(kind, value)] = f"opt_out_{kind}s"
        if not taken_back:
            return
        rows = await self.db.fetch_all("subscriber_optout_sources", {"id": subscriber_id})
        refused = [
            f"{taken_back[(row['kind'], row['value'])]}: the resident opted out of {row['value']} themselves, by "
            f"{how_the_resident_opted_out(str(row['source']))} on {str(row['created_at'])[:10]}"
            for row in rows
            if (row["kind"], row["value"]) in taken_back and made_by_resident(str(row["source"]))
        ]
        if refused:
            raise Forbidden(
                "; ".join(sorted(refused)) + ". Only the resident takes such an opt-out back (on their subscription "
                "page, or by subscribing again); an admin may correct the record"
            )

    async def _check_residents_settings_kept(
        self, subscriber_id: int, current: Subscriber, changes: dict[str, Any]
    ) -> None:
        """Forbidden when a department's change would alter a setting the resident chose on their own page."""
        altered = [f for f in RESIDENT_SETTINGS if f in changes and changes[f] != _setting(current, f)]
        if not altered:
            return
        chosen_at = await self.db.fetch_value("resident_settings_chosen_at", {"id": subscriber_id})
        if chosen_at is None:
            return
        raise Forbidden(
            f"{', '.join(altered)}: the resident chose their channels, quiet hours and language themselves on their "
            f"own page on {str(chosen_at)[:10]}; a department's key does not change them. The resident changes them on "
            "their page; a channel they should no longer get can be recorded as an opt-out (opt_out_channels); an "
            "admin may correct the record"
        )

    async def set_optouts(
        self,
        subscriber_id: int,
        kind: str,
        values: list[str],
        source: str,
        *,
        held: list[str],
        within: frozenset[str] | None = None,
    ) -> None:
        """Make ``values`` the resident's opt-outs of ``kind``, ``held`` being those it has now (of those
        ``within``, when given: a department's topics; the others are kept). An opt-out already held stays as it
        was recorded (its source and time: the resident's own reply or page, say); only the ones added or taken
        away change."""
        wanted = set(values)
        async with self.db.transaction():
            for value in held:
                if value not in wanted and (within is None or value in within):
                    await self.db.execute(
                        "remove_subscriber_optout", {"id": subscriber_id, "kind": kind, "value": value}
                    )
            for value in values:
                if value not in held:
                    await self.add_optout(subscriber_id, kind, value, source)

    async def add_optout_audited(self, subscriber_id: int, kind: str, value: str, source: str) -> dict[str, object]:
        """Add an opt-out inside the caller's transaction; the before and after of the resident's opt-outs."""
        field = f"opt_out_{kind}s"
        before = await self._get_in_scope(subscriber_id, None)
        await self.add_optout(subscriber_id, kind, value, source)
        after = await self._get_in_scope(subscriber_id, None)
        return {"before": {field: getattr(before, field)}, "after": {field: getattr(after, field)}}

    async def add_optout(self, subscriber_id: int, kind: str, value: str, source: str) -> None:
        """Record the opt-out; one already held keeps its source, unless the resident now makes one a department's
        key had recorded: then it becomes theirs, which a department's key may not take back."""
        params = {"id": subscriber_id, "kind": kind, "value": value, "now": now_iso(), "source": source}
        if not await self.db.execute("add_subscriber_optout", params) and made_by_resident(source):
            held = await self.db.fetch_all("subscriber_optout_sources", {"id": subscriber_id})
            if any(row["kind"] == kind and row["value"] == value and not made_by_resident(str(row["source"]))
                   for row in held):  # fmt: skip
                await self.db.execute("set_subscriber_optout_source", params)

    async def delete_subscriber(self, subscriber_id: int, actor: str, scope: PersonalDataScope | None = None) -> None:
        """Erase the resident's personal data; delivery statistics keep an anonymous row. A department's key
        erases only a resident no other department serves: erasing one another department reaches (a dibao
        household subscribed to air-quality alerts, say) would cut them off from that department too."""
        async with self.db.transaction():
            before = await self._get_in_scope(subscriber_id, scope)
            if scope is not None:
                await self._check_served_by_no_other(before, scope)
            if not await self.db.execute("erase_subscriber", {"id": subscriber_id, "now": now_iso()}):
                raise NotFound(f"no subscriber {subscriber_id}")
            for query in ("clear_subscriber_groups", "clear_subscriber_topics"):
                await self.db.execute(query, {"id": subscriber_id})
            detail: dict[str, object] = {**changes_of(before, None), "after": {"erased": True}}
            await self.audit(actor, "subscriber.delete", "subscriber", subscriber_id, detail)

    async def _check_served_by_no_other(self, subscriber: Subscriber, scope: PersonalDataScope) -> None:
        others = [
            department.code
            for department in await self.list_departments()
            if department.code != scope.department and PersonalDataScope.of(department).shows(subscriber)
        ]
        if others:
            raise Forbidden(
                f"the resident is also served by department {', '.join(sorted(others))}: a department's key does not "
                "erase them for every department. Take them off your topics and groups (PATCH), or ask an admin "
                "or the resident (their own page) to erase them"
            )

    async def get_subscriber(self, subscriber_id: int, scope: PersonalDataScope | None = None) -> Subscriber:
        """The resident as the scope shows it; NotFound also when outside the scope (its existence is not told)."""
        return _as_seen(await self._get_in_scope(subscriber_id, scope), scope)

    async def stored_subscribers(self, ids: list[int]) -> list[Subscriber]:
        """The residents with these ids as stored, in id order (unscoped: for the store's own writers, such as
        the bulk importer auditing what it wrote)."""
        return await self._hydrate(await self.db.fetch_all("get_subscribers", {"ids": dumps(ids)}))

    async def _get_in_scope(self, subscriber_id: int, scope: PersonalDataScope | None) -> Subscriber:
        row = await self.db.fetch_one("get_subscriber", {"id": subscriber_id})
        subscriber = None if row is None else (await self._hydrate([row]))[0]
        if subscriber is None or (scope is not None and not scope.shows(subscriber)):
            raise NotFound(f"no subscriber {subscriber_id}")
        return subscriber

    async def find_subscriber_by_phone(self, phone: str) -> int | None:
        value = await self.db.fetch_value("find_subscriber_by_phone", {"phone": phone})
        return None if value is None else int(value)

    async def readable_subscriber_ids(self, ids: list[int], scope: PersonalDataScope | None) -> set[int]:
        """Those of ``ids`` that are residents the scope reads (not erased)."""
        rows = await self.db.fetch_all("readable_subscriber_ids", {"ids": dumps(ids), **scope_params(scope)})
        return {int(row["id"]) for row in rows}

    async def list_subscribers(
        self,
        *,
        area: str | None,
        group: str | None,
        topic: str | None,
        cursor: str | None,
        limit: int,
        scope: PersonalDataScope | None = None,
    ) -> tuple[list[Subscriber], str | None]:
        lo, hi = area_range(area) if area else (None, None)
        rows = await self.db.fetch_all(
            "list_subscribers",
            {
                "after": decode_cursor(cursor) or 0,
                "area_lo": lo,
                "area_hi": hi,
                "group": group,
                "topic": topic,
                **scope_params(scope),
                "limit": limit + 1,
            },
        )
        items, next_cursor = page(rows, limit)
        return [_as_seen(subscriber, scope) for subscriber in await self._hydrate(items)], next_cursor

    async def search_subscribers(
        self,
        *,
        name: str | None,
        phone_end: str | None,
        area: str | None,
        group: str | None,
        topic: str | None,
        cursor: str | None,
        limit: int,
        scope: PersonalDataScope | None,
    ) -> tuple[list[Subscriber], str | None]:
        """``list_subscribers`` also narrowed by a part of the name and the last digits of the phone number."""
        lo, hi = area_range(area) if area else (None, None)
        params = {"after": decode_cursor(cursor) or 0, "area_lo": lo, "area_hi": hi, "group": group, "topic": topic,
                  "name": name or None, "phone": phone_end or None, **scope_params(scope),
                  "limit": limit + 1}  # fmt: skip
        items, next_cursor = page(await self.db.fetch_all("search_subscribers", params), limit)
        return [_as_seen(subscriber, scope) for subscriber in await self._hydrate(items)], next_cursor

    async def subscriber_deliveries(self, subscriber_id: int, department: str | None, limit: int = 200) -> list[Row]:
        """The messages sent to a resident, newest first, of ``department``'s notices (every one with None)."""
        params = {"subscriber_id": subscriber_id, "department": department, "limit": limit}
        return await self.db.fetch_all("subscriber_deliveries", params)

    async def subscriber_history(self, subscriber_id: int, limit: int = 200) -> list[Row]:
        """(at, actor, action) of the audit entries about a resident, oldest first."""
        return await self.db.fetch_all("subscriber_history", {"subscriber_id": str(subscriber_id), "limit": limit})

    async def _hydrate(self, rows: list[dict[str, Any]]) -> list[Subscriber]:
        ids = dumps([r["id"] for r in rows])
        groups: dict[int, list[str]] = defaultdict(list)
        topics: dict[int, list[str]] = defaultdict(list)
        optouts: dict[tuple[int, str], list[str]] = defaultdict(list)
        for r in await self.db.fetch_all("subscriber_group_codes", {"ids": ids}):
            groups[r["subscriber_id"]].append(r["code"])
        for r in await self.db.fetch_all("subscriber_topic_codes", {"ids": ids}):
            topics[r["subscriber_id"]].append(r["code"])
        for r in await self.db.fetch_all("subscriber_optout_values", {"ids": ids}):
            optouts[(r["subscriber_id"], r["kind"])].append(r["value"])
        return [
            Subscriber(
                **{k: r[k] for k in ("id", "external_id", "name", "phone", "email", "wechat_openid")},
                **{k: r[k] for k in ("wecom_userid", "area_code", "language", "created_at", "updated_at")},
                groups=groups[r["id"]],
                topics=topics[r["id"]],
                channels=json.loads(r["channels"]),
                quiet_hours=QuietHours(start=r["quiet_start"], end=r["quiet_end"]) if r["quiet_start"] else None,
                consent={
                    "source": r["consent_source"],
                    "at": r["consent_at"],
                    "withdrawn_at": r["consent_withdrawn_at"],
                },
                opt_out_topics=optouts[(r["id"], "topic")],
                opt_out_channels=optouts[(r["id"], "channel")],
            )
            for r in rows
        ]

    async def _check_references(self, area_code: str, groups: list[str], topics: list[str]) -> None:
        errors: list[FieldError] = []
        for check in (
            self.check_areas([area_code], "area_code"),
            self.check_codes("group", groups, "groups"),
            self.check_codes("topic", topics, "topics"),
        ):
            try:
                await check
            except InvalidInput as exc:
                errors += exc.errors
        for error in errors:
            if error.loc == "area_code.0":
                errors[errors.index(error)] = FieldError("area_code", error.msg, error.type)
        if errors:
            raise InvalidInput("unknown reference", errors)

    async def _check_unique(
        self, phone: str | None, external_id: str | None, own_id: int | None, scope: PersonalDataScope | None
    ) -> None:
        for field, query, value in (
            ("phone", "find_subscriber_by_phone", phone),
            ("external_id", "find_subscriber_by_external_id", external_id),
        ):
            other = await self.db.fetch_value(query, {field: value}) if value else None
            if other is not None and other != own_id:
                raise await self._duplicate(field, int(other), scope)

    async def _duplicate(self, field: str, other: int, scope: PersonalDataScope | None) -> Conflict:
        """The conflict names the other resident only to a key that reads it; to any other key it says that the
        value is taken, which registration cannot hide, and nothing about whom it belongs to."""
        if other in await self.readable_subscriber_ids([other], scope):
            conflict = Conflict(f"another resident (id {other}) has this {field}")
            conflict.extra.update(field=field, existing_id=other)
        else:
            conflict = Conflict(
                f"this {field} is registered to a resident outside the department's residents; "
                "the resident can subscribe to the department's topics on the resident pages, or an administrator "
                "can add them"
            )
            conflict.extra.update(field=field)
        return conflict

    async def _set_memberships(self, subscriber_id: int, groups: list[str] | None, topics: list[str] | None) -> None:
        for kind, codes in (("group", groups), ("topic", topics)):
            if codes is None:
                continue
            await self.db.execute(f"clear_subscriber_{kind}s", {"id": subscriber_id})
            for code in codes:
                await self.db.execute(f"add_subscriber_{kind}", {"id": subscriber_id, "code": code})
