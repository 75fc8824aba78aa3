"""Approval rules: how many distinct approvers a notice needs, and the emergency override of extreme alerts.

The config's ``[approval]`` section names the rules (``ApprovalConfig``); the API and the command line apply
them through these functions alike. A notice's author never approves it; each approver counts once. An extreme
alert may be sent at once by a role the config names: the override is a decision of its own, written to the
audit log, and the notice shows ``approval_overdue`` until its approvers, none of them the author or the one
who overrode, have approved it after the fact.

A recurring notice (``notifier.engine.scheduling``) is approved as a series: the rule of its department and
severity fixes how many distinct approvers its revision needs, none of them who wrote that revision; no slot
fires until they have approved it, and each notice a slot issues records their approvals as its decisions.
Revising the series (its text or its cron expression) starts a new revision that needs approval again. There
is no override for a series.
"""

from __future__ import annotations

from datetime import UTC, datetime

from notifier.config import ApprovalConfig
from notifier.domain.enums import Role, Severity
from notifier.domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from notifier.domain.models import ApiKeyInfo, Notice
from notifier.store import Store
from notifier.store.database import Row

DECIDERS = (Role.APPROVER, Role.ADMIN)


def actor_of(key: ApiKeyInfo) -> str:
    return f"apikey:{key.id}"


def check_not_expired(notice: Notice) -> None:
    """Conflict for a notice whose expiry passed while it waited: approved or submitted now, it would reach no one
    (an approval after the fact of one sent by override is still owed, whenever it comes)."""
    if notice.overridden_by is None and notice.expires_at is not None and notice.expires_at <= datetime.now(UTC):
        raise Conflict(
            f"notice {notice.id} expired at {notice.expires_at.isoformat()} while it waited and would reach no one; "
            "create it again with a later expires_at"
        )


async def submit(
    store: Store, rules: ApprovalConfig, key: ApiKeyInfo, notice: Notice, actor: str | None = None
) -> Notice:
    check_not_expired(notice)
    required = rules.required(notice.department, notice.severity)
    return await store.submit_notice(notice.id, actor=actor or actor_of(key), required=required)


def check_approver(key: ApiKeyInfo, notice: Notice, actor: str | None = None) -> None:
    """Neither the author nor the one who sent it by override approves a notice (``actor``: how the audit log
    names the approver, ``apikey:<id>`` unless a console session says ``staff:<id>``)."""
    if notice.created_by == key.id:
        raise Forbidden("a notice must be approved by someone other than its author")
    if notice.overridden_by == (actor or actor_of(key)):
        raise Forbidden("the approval after the fact must come from someone other than who sent it by override")


async def approve(
    store: Store,
    rules: ApprovalConfig,
    key: ApiKeyInfo,
    notice: Notice,
    comment: str | None,
    actor: str | None = None,
) -> Notice:
    check_approver(key, notice, actor)
    check_not_expired(notice)
    required = rules.required(notice.department, notice.severity)
    by = actor or actor_of(key)
    return await store.approve_notice(notice.id, decider=key, actor=by, comment=comment, required=required)


async def override(store: Store, rules: ApprovalConfig, key: ApiKeyInfo, notice: Notice, comment: str | None) -> Notice:
    """Send an extreme alert at once; only the roles ``[approval] override_roles`` names, and with a reason."""
    if key.role not in rules.override_roles:
        allowed = ", ".join(role.value for role in rules.override_roles) or "no role ([approval] override_roles)"
        raise Forbidden(f"the emergency override is allowed to {allowed}; the key has {key.role.value}")
    if notice.severity is not Severity.EXTREME:
        raise Forbidden(f"only an extreme alert may be sent by override; notice {notice.id} is {notice.severity}")
    if not comment:
        raise InvalidInput("an override needs a comment", [FieldError("comment", "required: why it cannot wait")])
    required = rules.required(notice.department, notice.severity)
    return await store.override_notice(notice.id, decider=key, actor=actor_of(key), comment=comment, required=required)


async def approve_recurring(
    store: Store, key: ApiKeyInfo, recurring_id: int, comment: str | None, actor: str | None = None
) -> Row:
    """One approval of a recurring notice's current revision: approvers and admins, of its department (an
    admin of any), never who wrote the revision."""
    if key.role not in DECIDERS:
        raise Forbidden(f"a recurring notice is approved by an approver or an admin; the key has {key.role.value}")
    series = await store.get_recurring_notice(recurring_id)
    if key.role is not Role.ADMIN and series["department"] != key.department:
        raise NotFound(f"no recurring notice {recurring_id}")
    return await store.approve_recurring_notice(
        recurring_id, decider=key, actor=actor or actor_of(key), comment=comment
    )
