"""Notices and their deliveries as the API sees them: create, read, move through the life cycle."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from notifier.domain.disclosure import domain_of_topic
from notifier.domain.enums import AREA_CHANNELS, ChannelKind, NoticeState
from notifier.domain.errors import Conflict, NotFound
from notifier.domain.models import ApiKeyInfo, Delivery, Notice, NoticeDecision, NoticeIn, PublicityIn
from notifier.store.common import decode_cursor, dumps, iso, now_iso, page
from notifier.store.subscribers import SubscriberRepository


def request_fingerprint(notice: NoticeIn) -> str:
    return hashlib.sha256(dumps(notice.model_dump(mode="json")).encode()).hexdigest()


def without_address(text: str | None, address: str | None) -> str | None:
    """A delivery's error text without the resident's address: gateways often repeat it (an SMTP 550 names the
    mailbox, an SMS gateway the number, with or without its country code)."""
    if not text or not address:
        return text
    forms = {address, address.lstrip("+")}
    if address.startswith("+86"):
        forms.add(address.removeprefix("+86"))
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True) if len(form) >= 3)
    return re.sub(pattern, "***", text, flags=re.IGNORECASE) if pattern else text


def _content_params(notice: NoticeIn) -> dict[str, Any]:
    """The columns a notice's author writes, as the store keeps them."""
    return {
        "topic": notice.topic,
        "title": notice.title,
        "body": notice.body,
        "template": notice.template,
        "data": dumps(notice.data),
        "severity": notice.severity.value,
        "target": dumps(notice.target.model_dump(mode="json")),
        "channels": dumps([c.value for c in notice.channels]),
        "channel_mode": notice.channel_mode.value,
        "send_at": iso(notice.send_at),
        "expires_at": iso(notice.expires_at),
        "references_id": notice.references,
    }


def cap_reference(cap: str | None) -> str | None:
    """``sender,identifier,sent`` of the CAP alert stored with a notice."""
    if not cap:
        return None
    alert = json.loads(cap)
    return f"{alert['sender']},{alert['identifier']},{alert['sent']}"


class NoticeRepository(SubscriberRepository):
    async def create_notice(
        self,
        notice: NoticeIn,
        *,
        department: str,
        created_by: int | None,
        actor: str,
        idempotency_key: str | None = None,
        template_version: int | None = None,
        answers_feedback: int | None = None,
    ) -> tuple[Notice, bool]:
        """Store a draft; with an idempotency key seen before, return the first notice and False.

        ``template_version`` is the version of its template (``notice`` for a body) it was checked against
        and renders with from then on. ``answers_feedback``: the feedback item a reply notice answers."""
        fingerprint = request_fingerprint(notice)
        async with self.db.transaction():
            if idempotency_key:
                row = await self.db.fetch_one(
                    "find_notice_by_idempotency_key", {"department": department, "idempotency_key": idempotency_key}
                )
                if row is not None:
                    if row["request_hash"] != fingerprint:
                        raise Conflict("Idempotency-Key was already used for a different notice")
                    return await self._notice_from_row(row), False
            if template_version is None:  # a caller that did not check: the version of now, not of the fan-out
                template_version = await self.db.fetch_value(
                    "latest_template_version", {"name": notice.template or "notice"}
                )
            row = await self.db.fetch_one(
                "insert_notice",
                {
                    "department": department,
                    **_content_params(notice),
                    "template_version": template_version,
                    "state": NoticeState.DRAFT.value,
                    "created_by": created_by,
                    "idempotency_key": idempotency_key,
                    "request_hash": fingerprint,
                    "now": now_iso(),
                },
            )
            assert row is not None
            notice_id = int(row["id"])
            await self._set_disclosure(notice_id, notice)
            await self._attach_roster(notice_id, notice)
            if notice.confirmation is not None or answers_feedback is not None:
                confirmation = notice.confirmation.model_dump(mode="json") if notice.confirmation else None
                await self.db.execute(
                    "set_notice_confirmation",
                    {"id": notice_id, "confirmation": dumps(confirmation) if confirmation is not None else None,
                     "answers_feedback": answers_feedback},
                )
            await self.audit(actor, "notice.create", "notice", notice_id, {"topic": notice.topic})
        return await self.get_notice(notice_id), True

    async def _set_disclosure(self, notice_id: int, notice: NoticeIn) -> None:
        """Whether the public pages show the notice (``public``, or the channel kind ``feed``), its domain (by
        default its topic's) and its interpretation."""
        await self.db.execute(
            "set_notice_disclosure",
            {
                "id": notice_id,
                "public": int(notice.public or ChannelKind.FEED in notice.channels),
                "domain": notice.domain or domain_of_topic(notice.topic),
                "interpretation": notice.interpretation,
            },
        )

    async def _attach_roster(self, notice_id: int, notice: NoticeIn) -> None:
        """The roster a notice targets and the publicity list it publishes, kept beside the notice (replaced
        when a draft is edited)."""
        await self.db.execute("set_notice_roster", {"id": notice_id, "roster_id": notice.target.roster})
        await self.db.execute("delete_notice_publicity", {"notice_id": notice_id})
        if notice.publicity is not None:
            publicity = notice.publicity
            await self.db.execute(
                "insert_notice_publicity",
                {
                    "notice_id": notice_id,
                    "roster_id": publicity.roster,
                    "columns": dumps(publicity.columns),
                    "masks": dumps(publicity.masks),
                    "from_date": publicity.from_date.isoformat(),
                    "until_date": publicity.until.isoformat(),
                    "complaint_phone": publicity.complaint_phone,
                    "paper": publicity.paper,
                },
            )

    async def notice_publicity(self, notice_id: int) -> PublicityIn | None:
        row = await self.db.fetch_one("get_notice_publicity", {"notice_id": notice_id})
        if row is None:
            return None
        return PublicityIn.model_validate(
            {
                "roster": row["roster_id"],
                "columns": json.loads(row["columns"]),
                "masks": json.loads(row["masks"]),
                "from": row["from_date"],
                "until": row["until_date"],
                "complaint_phone": row["complaint_phone"],
                "paper": row["paper"],
            }
        )

    async def get_notice(self, notice_id: int) -> Notice:
        row = await self.db.fetch_one("get_notice", {"id": notice_id})
        if row is None:
            raise NotFound(f"no notice {notice_id}")
        return await self._notice_from_row(row)

    async def list_notices(
        self,
        *,
        department: str | None,
        state: str | None,
        cursor: str | None,
        limit: int,
        overdue_approval: bool | None = None,
    ) -> tuple[list[Notice], str | None]:
        before = decode_cursor(cursor) or 2**62
        params = {"before": before, "department": department, "state": state, "limit": limit + 1}
        rows = await self.db.fetch_all("list_notices", {**params, "overdue": overdue_approval})
        items, next_cursor = page(rows, limit)
        return [await self._notice_from_row(r, with_counts=False) for r in items], next_cursor

    async def transition_notice(
        self,
        notice_id: int,
        from_states: Iterable[NoticeState],
        to_state: NoticeState,
        *,
        actor: str,
        approved_by: int | None = None,
        reason: str | None = None,
    ) -> Notice:
        async with self.db.transaction():
            before = await self._state_of(notice_id)
            await self._change_state(notice_id, from_states, to_state, approved_by=approved_by, reason=reason)
            detail: dict[str, object] = {"before": {"state": before}, "after": {"state": to_state.value}}
            if reason:
                detail["reason"] = reason
            await self.audit(actor, f"notice.{to_state.value}", "notice", notice_id, detail)
        return await self.get_notice(notice_id)

    async def edit_notice(
        self, notice_id: int, notice: NoticeIn, *, actor: str, template_version: int | None = None
    ) -> Notice:
        """Replace the content of a draft or a rejected notice, which becomes a draft again; Conflict in any other
        state. The rejection's comment (``reason``) and the decisions stay. ``template_version`` as for
        ``create_notice``: the version the new content was checked against."""
        async with self.db.transaction():
            before = await self.get_notice(notice_id)
            params = {"id": notice_id, **_content_params(notice), "template_version": template_version}
            params["now"] = now_iso()
            row = await self.db.fetch_one("edit_notice", params)
            if row is None:
                raise Conflict(
                    f"notice {notice_id} is {before.state.value}; only a draft or a rejected notice can be edited"
                )
            await self._set_disclosure(notice_id, notice)
            await self._attach_roster(notice_id, notice)
            confirmation = notice.confirmation.model_dump(mode="json") if notice.confirmation else None
            await self.db.execute("set_notice_confirmation_only", {
                "id": notice_id, "confirmation": dumps(confirmation) if confirmation is not None else None})
            detail: dict[str, object] = {"from_state": before.state.value}
            detail.update(
                before={"state": before.state.value, "title": before.title, "severity": before.severity.value},
                after={"state": "draft", "title": notice.title, "severity": notice.severity.value},
            )
            await self.audit(actor, "notice.edit", "notice", notice_id, detail)
        return await self.get_notice(notice_id)

    async def _state_of(self, notice_id: int) -> str:
        state = await self.db.fetch_value("notice_state", {"id": notice_id})
        if state is None:
            raise NotFound(f"no notice {notice_id}")
        return str(state)

    async def submit_notice(self, notice_id: int, *, actor: str, required: int) -> Notice:
        """Draft -> pending_approval, fixing the number of distinct approvers the config's rule asks for."""
        async with self.db.transaction():
            await self._state_of(notice_id)
            if await self.db.fetch_one("submit_notice", {"id": notice_id, "required": required, "now": now_iso()}):
                detail: dict[str, object] = {
                    "before": {"state": NoticeState.DRAFT.value},
                    "after": {"state": NoticeState.PENDING_APPROVAL.value, "approvals_required": required},
                }
                await self.audit(actor, "notice.pending_approval", "notice", notice_id, detail)
            else:
                current = await self._state_of(notice_id)
                raise Conflict(f"notice {notice_id} is {current}; it can become pending_approval only from draft")
        return await self.get_notice(notice_id)

    async def approve_notice(
        self, notice_id: int, *, decider: ApiKeyInfo, actor: str, comment: str | None, required: int
    ) -> Notice:
        """One approval by a distinct approver. The notice becomes approved (or, after an override, its
        approval complete) once ``approvals_required`` distinct approvers have approved it; ``required`` is
        used for notices submitted before the rules existed."""
        async with self.db.transaction():
            row = await self.db.fetch_one("get_notice", {"id": notice_id})
            if row is None:
                raise NotFound(f"no notice {notice_id}")
            after_the_fact = row["overridden_at"] is not None
            if after_the_fact and row["approved_at"] is not None:
                raise Conflict(f"notice {notice_id} was overridden and is already approved after the fact")
            if not after_the_fact and row["state"] != NoticeState.PENDING_APPROVAL.value:
                raise Conflict(
                    f"notice {notice_id} is {row['state']}; it can become approved only from pending_approval"
                )
            approvers = {r["actor"] for r in await self.db.fetch_all("notice_approvers", {"notice_id": notice_id})}
            if actor in approvers:
                raise Conflict(f"notice {notice_id} is already approved by {actor}; it needs distinct approvers")
            needed = int(row["approvals_required"] or required)
            await self._insert_decision(notice_id, "approved", decider, actor, comment, after_the_fact)
            count = len(approvers) + 1
            complete = count >= needed
            detail: dict[str, object] = {"role": decider.role.value, "department": decider.department}
            detail.update(comment=comment, approvals=count, approvals_required=needed, after_the_fact=after_the_fact)
            action = "notice.approval"
            if complete and after_the_fact:
                action = "notice.approved_after_the_fact"
                detail.update(before={"approval_overdue": True}, after={"approval_overdue": False})
            elif complete:
                action = "notice.approved"
                await self._change_state(
                    notice_id, [NoticeState.PENDING_APPROVAL], NoticeState.APPROVED, approved_by=None, reason=None
                )
                detail.update(before={"state": row["state"]}, after={"state": NoticeState.APPROVED.value})
            if complete:
                params = {"id": notice_id, "approved_by": decider.id, "required": needed, "reason": comment}
                await self.db.execute("complete_approval", {**params, "now": now_iso()})
            await self.audit(actor, action, "notice", notice_id, detail)
        return await self.get_notice(notice_id)

    async def override_notice(
        self, notice_id: int, *, decider: ApiKeyInfo, actor: str, comment: str, required: int
    ) -> Notice:
        """Send an extreme alert at once (draft or pending_approval -> approved) before anyone approved it;
        it stays ``approval_overdue`` until ``required`` distinct approvers approve it after the fact."""
        async with self.db.transaction():
            before = await self._state_of(notice_id)
            params = {"id": notice_id, "actor": actor, "required": required, "reason": comment, "now": now_iso()}
            if await self.db.fetch_one("override_notice", params) is None:
                raise Conflict(
                    f"notice {notice_id} is {before}; only an extreme alert in draft or pending_approval "
                    "can be sent by override"
                )
            await self._insert_decision(notice_id, "overridden", decider, actor, comment, False)
            detail: dict[str, object] = {"role": decider.role.value, "department": decider.department}
            detail.update(
                comment=comment,
                approvals_required=required,
                before={"state": before, "approval_overdue": False},
                after={"state": NoticeState.APPROVED.value, "approval_overdue": True},
            )
            await self.audit(actor, "notice.overridden", "notice", notice_id, detail)
        return await self.get_notice(notice_id)

    async def _insert_decision(
        self, notice_id: int, decision: str, decider: ApiKeyInfo, actor: str, comment: str | None, after: bool
    ) -> None:
        await self.db.execute(
            "insert_notice_decision_full",
            {
                "notice_id": notice_id,
                "decision": decision,
                "actor": actor,
                "role": decider.role.value,
                "department": decider.department,
                "comment": comment,
                "after_the_fact": int(after),
                "now": now_iso(),
            },
        )

    async def decide_notice(
        self,
        notice_id: int,
        decision: Literal[NoticeState.APPROVED, NoticeState.REJECTED],
        *,
        decider: ApiKeyInfo,
        actor: str,
        comment: str | None,
    ) -> Notice:
        """Approve or reject a notice pending approval; the decision and its comment are kept in its history
        (``decisions``) and in the audit log. Approval records the decider as ``approved_by``."""
        approved_by = decider.id if decision is NoticeState.APPROVED else None
        async with self.db.transaction():
            await self._change_state(
                notice_id, [NoticeState.PENDING_APPROVAL], decision, approved_by=approved_by, reason=comment
            )
            await self.db.execute(
                "insert_notice_decision",
                {
                    "notice_id": notice_id,
                    "decision": decision.value,
                    "actor": actor,
                    "role": decider.role.value,
                    "department": decider.department,
                    "comment": comment,
                    "now": now_iso(),
                },
            )
            detail: dict[str, object] = {"role": decider.role.value, "department": decider.department}
            detail["comment"] = comment
            detail.update(before={"state": NoticeState.PENDING_APPROVAL.value}, after={"state": decision.value})
            await self.audit(actor, f"notice.{decision.value}", "notice", notice_id, detail)
        return await self.get_notice(notice_id)

    async def _change_state(
        self,
        notice_id: int,
        from_states: Iterable[NoticeState],
        to_state: NoticeState,
        *,
        approved_by: int | None,
        reason: str | None,
    ) -> None:
        """Move the notice to ``to_state`` (inside the caller's transaction); Conflict from any other state."""
        allowed = [s.value for s in from_states]
        changed = await self.db.fetch_one(
            "transition_notice",
            {
                "id": notice_id,
                "from_states": dumps(allowed),
                "to_state": to_state.value,
                "approved_by": approved_by,
                "reason": reason,
                "now": now_iso(),
            },
        )
        if changed is None:
            current = await self.get_notice(notice_id)
            raise Conflict(
                f"notice {notice_id} is {current.state.value}; it can become {to_state.value} only from "
                + ", ".join(allowed)
            )

    async def record_notice_failure(self, notice_id: int, reason: str, actor: str) -> None:
        """Keep why the service stopped a notice by itself (``failure_reason``), in the audit log too."""
        async with self.db.transaction():
            await self.db.execute("set_notice_failure_reason", {"id": notice_id, "reason": reason})
            detail: dict[str, object] = {"failure_reason": reason, "after": {"failure_reason": reason}}
            await self.audit(actor, "notice.failed", "notice", notice_id, detail)

    async def failed_notices_per_department(self) -> dict[str, int]:
        """Notices the service stopped by itself, by department."""
        rows = await self.db.fetch_all("failed_notices_per_department", {})
        return {str(row["department"]): int(row["n"]) for row in rows}

    async def list_deliveries(
        self, notice_id: int, cursor: str | None, limit: int
    ) -> tuple[list[Delivery], str | None]:
        await self.get_notice(notice_id)
        rows = await self.db.fetch_all(
            "list_deliveries", {"notice_id": notice_id, "after": decode_cursor(cursor) or 0, "limit": limit + 1}
        )
        items, next_cursor = page(rows, limit)
        deliveries = []
        for row in items:
            address = row.pop("address")
            deliveries.append(Delivery(**{**row, "last_error": without_address(row["last_error"], address)}))
        return deliveries, next_cursor

    async def delivery_counts(self, notice_id: int) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for row in await self.db.fetch_all("delivery_counts", {"notice_id": notice_id}):
            counts[row["channel"]][row["state"]] = int(row["n"])
        return dict(counts)

    async def _notice_from_row(self, row: dict[str, Any], with_counts: bool = True) -> Notice:
        """The API's notice; with counts: deliveries per channel and state (resident kinds and the area kinds
        bot and bulletin, which never share a key), reach among residents, areas reached."""
        counts = await self.delivery_counts(row["id"]) if with_counts else {}
        reach = areas_reached = None
        if with_counts and row["targeted"]:
            reached = await self.db.fetch_value("notice_reached", {"notice_id": row["id"]})
            reach = round(int(reached or 0) / int(row["targeted"]), 4)
        if with_counts and AREA_CHANNELS.intersection(counts):
            areas_reached = int(await self.db.fetch_value("notice_areas_reached", {"notice_id": row["id"]}) or 0)
        decisions = []
        if with_counts:
            rows = await self.db.fetch_all("list_notice_decisions", {"notice_id": row["id"]})
            decisions = [NoticeDecision(**decision) for decision in rows]
        approvals = int(await self.db.fetch_value("count_notice_approvals", {"notice_id": row["id"]}) or 0)
        return Notice(
            **{k: row[k] for k in ("id", "department", "topic", "title", "body", "template", "severity")},
            **{k: row[k] for k in ("channel_mode", "send_at", "expires_at", "state", "created_by", "approved_by")},
            **{k: row[k] for k in ("reason", "failure_reason", "created_at", "updated_at", "template_version")},
            data=json.loads(row["data"]),
            target=json.loads(row["target"]),
            channels=json.loads(row["channels"]),
            references=row["references_id"],
            confirmation=json.loads(row["confirmation"]) if row.get("confirmation") else None,
            answers_feedback=row.get("answers_feedback"),
            counts=counts,
            reach=reach,
            areas_reached=areas_reached,
            decisions=decisions,
            public=bool(row.get("public")),
            domain=row.get("domain"),
            interpretation=row.get("interpretation"),
            cap_identifier=cap_reference(row.get("cap")),
            approvals=approvals,
            **{k: row[k] for k in ("approvals_required", "submitted_at", "approved_at")},
            **{k: row[k] for k in ("overridden_by", "overridden_at")},
            approval_overdue=row["overridden_at"] is not None and row["approved_at"] is None,
            publicity=await self.notice_publicity(row["id"]),
        )
