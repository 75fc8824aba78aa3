"""Residents' feedback in the console: the department's inbox, one item with assign, reply and close.

    GET  /console/feedback?state=&overdue=1   the department's items (admins: also those that matched no notice),
                                              oldest first; overdue items flagged
    GET  /console/feedback/{id}               the item, its notice, its answer and outcome, and the forms
    POST /console/feedback/{id}/assign        who handles it
    POST /console/feedback/{id}/reply         the answer goes back on the channel the item came from
                                              (``engine.feedback.answer_feedback``, as the API's reply)
    POST /console/feedback/{id}/close         with an outcome

Reading is for any staff member of the department; acting for issuers, approvers and admins. Reads are audited
like the API's (``feedback.list``, ``feedback.read``), actions by the store (``feedback.assigned`` ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from notifier.api.routing import path_int
from notifier.api.wake import wake
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.enums import FeedbackState, Role
from notifier.domain.errors import NotFound
from notifier.domain.feedback import FeedbackAssignIn, FeedbackCloseIn, FeedbackItem, FeedbackReplyIn
from notifier.engine.feedback import answer_feedback

INBOX_PATH = "/console/feedback"
INBOX_LIMIT = 200
ACTING = (Role.ISSUER, Role.APPROVER)


def item_path(feedback_id: int) -> str:
    return f"{INBOX_PATH}/{feedback_id}"


@page()
async def inbox(request: web.Request, console: Console) -> web.StreamResponse:
    staff = console.staff
    state = request.query.get("state")
    state = state if state in {s.value for s in FeedbackState} else None
    overdue = True if request.query.get("overdue") == "1" else None
    items, _ = await console.store.list_feedback(
        department=staff.department, unlinked=staff.role is Role.ADMIN, notice_id=None, state=state,
        overdue=overdue, cursor=None, limit=INBOX_LIMIT,
    )
    await console.store.audit(staff.actor, "feedback.list", "feedback", None,
                              {"state": state, "overdue": overdue, "rows": len(items)})
    return console.render("feedback_inbox.html", items=items, state=state, overdue=overdue)


async def _item(console: Console) -> FeedbackItem:
    staff = console.staff
    item = await console.store.get_feedback(path_int(console.request, "id"))
    if not (item.department == staff.department or (item.department is None and staff.role is Role.ADMIN)):
        raise NotFound(f"no feedback {item.id}")
    return item


async def _item_page(console: Console, item: FeedbackItem, *, status: int = 200,
                     errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> web.Response:
    staff = console.staff
    notice = await console.store.get_notice(item.notice_id) if item.notice_id is not None else None
    context: dict[str, Any] = {
        "item": item, "notice": notice, "errors": errors or {}, "values": values or {},
        "may_act": (staff.role in ACTING or staff.role is Role.ADMIN) and item.state is not FeedbackState.CLOSED,
    }
    return console.render("feedback_item.html", status=status, **context)


@page()
async def item_page(request: web.Request, console: Console) -> web.StreamResponse:
    item = await _item(console)
    await console.store.audit(console.staff.actor, "feedback.read", "feedback", item.id, {})
    return await _item_page(console, item)


def _problem(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


Act = Callable[[Console, FeedbackItem, Any], Awaitable[None]]


async def _form_action(console: Console, field: str, limit: int, model: type[BaseModel], act: Act) -> web.Response:
    """One action on an item: read ``field`` from the form, validate it with ``model`` (the API's body), show the
    item's page again with a 422 naming the field when it is wrong, else ``act`` and go back to the item."""
    item = await _item(console)
    raw = console.field(field, limit)
    try:
        body = model.model_validate({field: raw})
    except ValidationError as exc:
        return await _item_page(console, item, status=422, errors={field: _problem(exc)}, values={field: raw})
    await act(console, item, body)
    raise redirect(item_path(item.id))


async def _assign(console: Console, item: FeedbackItem, body: FeedbackAssignIn) -> None:
    await console.store.assign_feedback(item.id, body.assigned_to, console.staff.actor)


async def _reply(console: Console, item: FeedbackItem, body: FeedbackReplyIn) -> None:
    await answer_feedback(console.store, console.staff.as_key(), console.staff.actor, item, body.text)
    wake(console.request.app)


async def _close(console: Console, item: FeedbackItem, body: FeedbackCloseIn) -> None:
    await console.store.close_feedback(item.id, body.outcome, console.staff.actor)


@page(roles=ACTING)
async def assign(request: web.Request, console: Console) -> web.StreamResponse:
    return await _form_action(console, "assigned_to", 101, FeedbackAssignIn, _assign)


@page(roles=ACTING)
async def reply(request: web.Request, console: Console) -> web.StreamResponse:
    return await _form_action(console, "text", 501, FeedbackReplyIn, _reply)


@page(roles=ACTING)
async def close(request: web.Request, console: Console) -> web.StreamResponse:
    return await _form_action(console, "outcome", 1001, FeedbackCloseIn, _close)


NAV_ITEMS = [NavItem(INBOX_PATH, "意见建议", "Feedback")]
ROUTES = [
    ("GET", INBOX_PATH, inbox),
    ("GET", "/console/feedback/{id}", item_page),
    ("POST", "/console/feedback/{id}/assign", assign),
    ("POST", "/console/feedback/{id}/reply", reply),
    ("POST", "/console/feedback/{id}/close", close),
]
