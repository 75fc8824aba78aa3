"""Residents' feedback: the department's inbox, answers through the engine, closing, and the report.

    GET  /api/v1/feedback?notice=&state=&overdue=   the key's department's items (admin keys: also those that
                                                    matched no notice), oldest first, paged
    GET  /api/v1/feedback/{id}
    POST /api/v1/feedback/{id}/assign  {"assigned_to"}   who handles it
    POST /api/v1/feedback/{id}/reply   {"text"}          the answer goes back on the channel it came from
    POST /api/v1/feedback/{id}/close   {"outcome"}
    GET  /api/v1/reports/feedback?from=&to=&department=  received, answered, answered in time, median minutes

Items of another department are 404. Acting needs the issuer, approver or admin role; reading any role.
Every list and read is audited (``feedback.list``, ``feedback.read``: the filter and count, or the id), as are
assigning, answering and closing (``notifier.store.feedback``).
"""

from __future__ import annotations

import re
import statistics
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, field_validator

from notifier.api.auth import actor, require
from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Route, json_response, page_response, path_int, read_body, read_query
from notifier.api.wake import wake
from notifier.domain.enums import Role
from notifier.domain.errors import Forbidden, NotFound
from notifier.domain.feedback import (
    FeedbackAssignIn,
    FeedbackCloseIn,
    FeedbackFigures,
    FeedbackItem,
    FeedbackQuery,
    FeedbackReplyIn,
    FeedbackReport,
)
from notifier.domain.models import ApiKeyInfo, Code, Strict
from notifier.engine.feedback import answer_feedback
from notifier.store.database import Row

ACTING = (Role.ISSUER, Role.APPROVER)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


async def _own_item(request: web.Request, key: ApiKeyInfo) -> FeedbackItem:
    item = await request.app[STORE].get_feedback(path_int(request, "id"))
    visible = item.department == key.department or (item.department is None and key.role is Role.ADMIN)
    if not visible:
        raise NotFound(f"no feedback {item.id}")
    return item


async def list_feedback(request: web.Request) -> web.Response:
    key = await require(request)
    q = read_query(request, FeedbackQuery)
    store = request.app[STORE]
    items, cursor = await store.list_feedback(
        department=key.department, unlinked=key.role is Role.ADMIN, notice_id=q.notice,
        state=q.state.value if q.state else None, overdue=q.overdue, cursor=q.cursor, limit=q.limit,
    )
    await store.audit(actor(key), "feedback.list", "feedback", None,
                      {"notice": q.notice, "state": q.state, "overdue": q.overdue, "rows": len(items)})
    return page_response(items, cursor)


async def get_feedback(request: web.Request) -> web.Response:
    key = await require(request)
    item = await _own_item(request, key)
    await request.app[STORE].audit(actor(key), "feedback.read", "feedback", item.id, {})
    return json_response(item)


async def assign_feedback(request: web.Request) -> web.Response:
    key = await require(request, *ACTING)
    item = await _own_item(request, key)
    body = await read_body(request, FeedbackAssignIn)
    store = request.app[STORE]
    await store.assign_feedback(item.id, body.assigned_to, actor(key))
    return json_response(await store.get_feedback(item.id))


async def reply_feedback(request: web.Request) -> web.Response:
    key = await require(request, *ACTING)
    item = await _own_item(request, key)
    body = await read_body(request, FeedbackReplyIn)
    store = request.app[STORE]
    await answer_feedback(store, key, actor(key), item, body.text)
    wake(request.app)
    return json_response(await store.get_feedback(item.id))


async def close_feedback(request: web.Request) -> web.Response:
    key = await require(request, *ACTING)
    item = await _own_item(request, key)
    body = await read_body(request, FeedbackCloseIn)
    store = request.app[STORE]
    await store.close_feedback(item.id, body.outcome, actor(key))
    return json_response(await store.get_feedback(item.id))


class FeedbackReportQuery(Strict):
    from_: date | None = Field(None, alias="from", description="first day (server timezone), default 30 days ago")
    to: date | None = Field(None, description="last day, included (server timezone), default today")
    department: Code | None = Field(None, description="one department (admin keys; others see their own only)")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _calendar_day(cls, value: object) -> object:
        if isinstance(value, str) and not _DAY.fullmatch(value):
            raise ValueError("a day is written YYYY-MM-DD")
        return value


def figures(department: str, rows: list[Row]) -> FeedbackFigures:
    answered = [r for r in rows if r["answered_at"]]
    minutes = [
        (datetime.fromisoformat(r["answered_at"]) - datetime.fromisoformat(r["received_at"])).total_seconds() / 60
        for r in answered
    ]
    return FeedbackFigures(
        department=department, received=len(rows), answered=len(answered),
        answered_in_time=sum(1 for r in answered if r["answered_at"] <= r["due_at"]),
        median_minutes_to_answer=round(statistics.median(minutes), 1) if minutes else None,
    )


async def feedback_report(request: web.Request) -> web.Response:
    key = await require(request)
    q = read_query(request, FeedbackReportQuery)
    department = q.department
    if key.role is not Role.ADMIN:
        if department not in (None, key.department):
            raise Forbidden(f"department: a key of {key.department} reports on its own department only")
        department = key.department
    zone = ZoneInfo(request.app[SETTINGS].server.timezone)
    last = q.to or datetime.now(zone).date()
    first = q.from_ or last - timedelta(days=29)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    rows = await request.app[STORE].feedback_report_rows(start, end, department)
    per_department: dict[str, list[Row]] = {}
    for row in rows:
        per_department.setdefault(row["department"], []).append(row)
    report = FeedbackReport(start=start, end=end, items=[figures(d, r) for d, r in sorted(per_department.items())])
    return json_response(report)


_ITEM = {409: "the item is closed"}
ROUTES = [
    Route("GET", "/api/v1/feedback", list_feedback, "Residents' feedback to the department's notices", "feedback",
          query=FeedbackQuery, response=FeedbackItem, response_list=True),
    Route("GET", "/api/v1/feedback/{id}", get_feedback, "One feedback item", "feedback", response=FeedbackItem),
    Route("POST", "/api/v1/feedback/{id}/assign", assign_feedback, "Assign a feedback item", "feedback",
          body=FeedbackAssignIn, response=FeedbackItem, roles=("issuer", "approver", "admin"), extra_responses=_ITEM),
    Route("POST", "/api/v1/feedback/{id}/reply", reply_feedback,
          "Answer a feedback item: sent to the resident on the channel it came from, as a reply notice", "feedback",
          body=FeedbackReplyIn, response=FeedbackItem, roles=("issuer", "approver", "admin"),
          extra_responses={409: "the item is closed, or no topic can carry the reply"}),
    Route("POST", "/api/v1/feedback/{id}/close", close_feedback, "Close a feedback item with its outcome",
          "feedback", body=FeedbackCloseIn, response=FeedbackItem, roles=("issuer", "approver", "admin"),
          extra_responses=_ITEM),
    Route("GET", "/api/v1/reports/feedback", feedback_report,
          "Feedback received, answered, answered in time and the median time to answer, per department",
          "reports", query=FeedbackReportQuery, response=FeedbackReport),
]
