"""Notices in the console: the approval queue, a notice's page (its messages as each channel receives them,
its audience, its decisions) and the approver's decision.

    GET  /console/approvals                  notices of the department waiting for approval, and alerts sent by
                                             emergency override still waiting for approval after the fact
    GET  /console/notices/{id}               the notice, its previews per channel and town, its decisions
    POST /console/notices/{id}/approve       optional comment; 403 page for the notice's own author
    POST /console/notices/{id}/reject        a comment is required (422 page naming it)

Everything goes through what the API uses: ``notifier.policy`` (department scope, the four-eyes rule),
``draft_preview`` (the compose preview and ``POST /notice-preview``) and ``Store.decide_notice``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import ValidationError

from notifier import approval
from notifier.api.draft_preview import DraftPreview, draft_preview
from notifier.api.keys import SETTINGS
from notifier.api.routing import path_int
from notifier.api.wake import wake
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.enums import NoticeState, Role
from notifier.domain.errors import NotifierError
from notifier.domain.models import DecisionIn, Notice
from notifier.policy import notice_for_key

log = logging.getLogger(__name__)

QUEUE_PATH = "/console/approvals"
QUEUE_LIMIT = 200
DECIDERS = (Role.APPROVER,)


def notice_path(notice_id: int) -> str:
    return f"/console/notices/{notice_id}"


async def overdue_after_the_fact(console: Console) -> list[Notice]:
    """Alerts sent by emergency override and not yet approved after the fact: the staff member's department's,
    every department's for an admin. They stay flagged until their approvers have approved them."""
    staff = console.staff
    department = None if staff.role is Role.ADMIN else staff.department
    notices, _ = await console.store.list_notices(
        department=department, state=None, cursor=None, limit=QUEUE_LIMIT, overdue_approval=True
    )
    return notices


@page(roles=DECIDERS)
async def approval_queue(request: web.Request, console: Console) -> web.StreamResponse:
    staff = console.staff
    notices, _ = await console.store.list_notices(
        department=staff.department, state=NoticeState.PENDING_APPROVAL.value, cursor=None, limit=QUEUE_LIMIT
    )
    overdue = await overdue_after_the_fact(console)
    keys = [n.created_by for n in [*notices, *overdue] if n.created_by is not None]
    names = await console.store.people_names(keys, [n.overridden_by for n in overdue if n.overridden_by])
    return console.render("approvals.html", notices=notices, overdue=overdue, names=names, own_key=staff.key_id)


async def _notice(console: Console) -> Notice:
    return await notice_for_key(console.store, console.staff.as_key(), path_int(console.request, "id"))


async def _preview(console: Console, notice: Notice) -> tuple[DraftPreview | None, str | None]:
    """The same previews as the compose page and ``POST /notice-preview``; the reason when there are none."""
    try:
        return await draft_preview(console.request, console.staff.as_key(), notice, printout=True,
                                   by=console.staff.actor), None
    except NotifierError as exc:
        return None, exc.detail


async def _notice_page(
    console: Console, notice: Notice, *, status: int = 200, errors: dict[str, str] | None = None, comment: str = ""
) -> web.Response:
    staff = console.staff
    preview, preview_error = await _preview(console, notice)
    author_key = [notice.created_by] if notice.created_by is not None else []
    actors = [d.actor for d in notice.decisions] + ([notice.overridden_by] if notice.overridden_by else [])
    names = await console.store.people_names(author_key, actors)
    decider = staff.role in DECIDERS or staff.role is Role.ADMIN
    may_decide = decider and (notice.state is NoticeState.PENDING_APPROVAL or notice.approval_overdue)
    context: dict[str, Any] = {
        "notice": notice,
        "preview": preview,
        "preview_error": preview_error,
        "names": names,
        "may_decide": may_decide,
        "own_notice": notice.created_by == staff.key_id,
        "errors": errors or {},
        "comment": comment,
        "town_names": await console.store.printable_area_names() if preview is not None else {},
    }
    return console.render("notice.html", status=status, **context)


@page()
async def notice_page(request: web.Request, console: Console) -> web.StreamResponse:
    return await _notice_page(console, await _notice(console))


def _comment(console: Console) -> tuple[str | None, str | None]:
    """The posted comment, or the reason it is refused."""
    try:
        return DecisionIn(comment=console.field("comment", 2001) or None).text, None
    except ValidationError as exc:
        return None, exc.errors()[0]["msg"].removeprefix("Value error, ")


async def _decide(
    console: Console, decision: Literal[NoticeState.APPROVED, NoticeState.REJECTED]
) -> web.StreamResponse:
    t = console.t
    notice = await _notice(console)
    key = console.staff.as_key()
    comment, problem = _comment(console)
    raw = console.field("comment", 2001)
    if problem is not None:
        return await _notice_page(console, notice, status=422, errors={"comment": problem}, comment=raw)
    if decision is NoticeState.REJECTED and not comment:
        error = t("驳回时必须填写意见", "A rejection needs a comment")
        return await _notice_page(console, notice, status=422, errors={"comment": error}, comment=raw)
    if decision is NoticeState.APPROVED:
        rules = console.request.app[SETTINGS].approval
        await approval.approve(console.store, rules, key, notice, comment, actor=console.staff.actor)
    else:
        await console.store.decide_notice(notice.id, decision, decider=key, actor=console.staff.actor, comment=comment)
    if decision is NoticeState.APPROVED:
        wake(console.request.app)
    raise redirect(notice_path(notice.id))


@page(roles=DECIDERS)
async def approve(request: web.Request, console: Console) -> web.StreamResponse:
    return await _decide(console, NoticeState.APPROVED)


@page(roles=DECIDERS)
async def reject(request: web.Request, console: Console) -> web.StreamResponse:
    return await _decide(console, NoticeState.REJECTED)


NAV_ITEMS = [NavItem(QUEUE_PATH, "待审核", "Approvals", roles=DECIDERS)]
ROUTES = [
    ("GET", QUEUE_PATH, approval_queue),
    ("GET", "/console/notices/{id}", notice_page),
    ("POST", "/console/notices/{id}/approve", approve),
    ("POST", "/console/notices/{id}/reject", reject),
]
