"""The audit log for administrators: filtered pages as JSON, or every matching entry as CSV (streamed)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Annotated

from aiohttp import web
from pydantic import BeforeValidator, Field

from notifier.api.auth import require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.routing import Route, page_response, read_query
from notifier.domain.enums import Role
from notifier.domain.models import AuditEntry, Moment
from notifier.store.audit import AuditFilter
from notifier.store.audit_chain import CHAIN_FIELDS

CSV_MEDIA = "text/csv"
CSV_COLUMNS = (*CHAIN_FIELDS, "hash")
_ZERO_WEIGHT = re.compile(r"q=0(\.0{0,3})?")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    """Only what ``format: date-time`` allows (RFC 3339): not the epoch numbers pydantic would also read."""
    if isinstance(value, str) and not _DATE_TIME.fullmatch(value):
        raise ValueError("an RFC 3339 time with a zone, e.g. 2026-11-30T08:00:00+08:00")
    return value


QueryMoment = Annotated[Moment, BeforeValidator(_rfc3339)]


class AuditQuery(PageQuery):
    actor: str | None = Field(None, min_length=1, max_length=200, description="exactly this actor, e.g. apikey:3")
    action: str | None = Field(None, min_length=1, max_length=200, description="exactly this action")
    from_: QueryMoment | None = Field(None, alias="from", description="entries at or after this time")
    to: QueryMoment | None = Field(None, description="entries before this time")


def wants_csv(request: web.Request) -> bool:
    """Whether Accept names text/csv with a weight above zero."""
    for media_range in request.headers.get("Accept", "").split(","):
        media, *params = (part.replace(" ", "").lower() for part in media_range.split(";"))
        if media == CSV_MEDIA and not any(_ZERO_WEIGHT.fullmatch(param) for param in params):
            return True
    return False


async def list_audit(request: web.Request) -> web.StreamResponse:
    await require(request, Role.ADMIN)
    q = read_query(request, AuditQuery)
    where = AuditFilter(actor=q.actor, action=q.action, from_at=q.from_, to_at=q.to)
    store = request.app[STORE]
    if not wants_csv(request):
        return page_response(*await store.list_audit(where, q.cursor, q.limit))
    response = web.StreamResponse(headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    response.content_type = CSV_MEDIA
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write(_csv_lines([CSV_COLUMNS]))
    async for rows in store.audit_rows(where, q.cursor):
        await response.write(_csv_lines([[row[name] for name in CSV_COLUMNS] for row in rows]))
    await response.write_eof()
    return response


def _csv_lines(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


ROUTES = [
    Route(
        "GET",
        "/api/v1/audit",
        list_audit,
        "The audit log, filtered by actor, action and time; with Accept: text/csv every matching entry as CSV",
        "audit",
        query=AuditQuery,
        response=AuditEntry,
        response_list=True,
        roles=("admin",),
        success_media={CSV_MEDIA: {"type": "string", "description": "header row, then " + ",".join(CSV_COLUMNS)}},
    ),
]
