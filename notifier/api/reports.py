"""Reports: the reach of notices and the department assessment, as JSON, CSV or XLSX (by Accept).

A department's key sees its own department's figures; an admin key sees every department's, or one with
``?department=``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field

from notifier.api.auth import require
from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Route, validate_query
from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, Forbidden, InvalidInput
from notifier.domain.models import CODE_PATTERN, ApiKeyInfo, Strict
from notifier.report_formats import CSV_MEDIA, XLSX_MEDIA, Table, assessment_tables, reach_tables, to_csv, to_xlsx
from notifier.reports import (
    AssessmentReport,
    ReachReport,
    assessment_report,
    parse_day_or_moment,
    period_end,
    period_start,
    reach_report,
)

_DAY_OR_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?"
)
_ZERO_WEIGHT = re.compile(r"q=0(\.0{0,3})?")


def _day_or_time(value: object) -> object:
    """A day as a ``date`` (a whole day where the service is, ``period_start``/``period_end``), a time as an
    aware ``datetime``: left to the union, a day became a naive midnight read in the process's zone."""
    if not isinstance(value, str):
        return value
    if not _DAY_OR_TIME.fullmatch(value):
        raise ValueError("a date (2026-11-30) or an RFC 3339 time with a zone (2026-11-30T08:00:00+08:00)")
    return parse_day_or_moment(value)


DayOrTime = Annotated[
    datetime | date,
    BeforeValidator(_day_or_time),
    Field(json_schema_extra={"examples": ["2026-11-01", "2026-11-30T08:00:00+08:00"]}),
]


class PeriodQuery(Strict):
    from_: DayOrTime | None = Field(
        None, alias="from", description="start of the period: this day (server time zone) or time"
    )
    to: DayOrTime | None = Field(None, description="end of the period: this day, inclusive, or before this time")


class ReachQuery(PeriodQuery):
    department: str | None = Field(
        None, pattern=CODE_PATTERN, description="one department (admins); other keys see their own only"
    )


def _accepts(request: web.Request, media: str) -> bool:
    for media_range in request.headers.get("Accept", "").split(","):
        name, *params = (part.replace(" ", "").lower() for part in media_range.split(";"))
        if name == media and not any(_ZERO_WEIGHT.fullmatch(param) for param in params):
            return True
    return False


def department_in_scope(key: ApiKeyInfo, asked: str | None) -> str | None:
    """The department whose figures the key may read: its own; an admin's any (None: all)."""
    if key.role is Role.ADMIN:
        return asked
    if asked is not None and asked != key.department:
        raise Forbidden(f"department {key.department} may read its own reports only, not {asked}'s")
    return key.department


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: releases from ``start`` (inclusive) to ``end`` (exclusive), of ``department``
    (None: every department)."""

    start: datetime
    end: datetime
    department: str | None


def report_scope(
    key: ApiKeyInfo, query: Mapping[str, str], model: type[PeriodQuery], timezone: str, now: datetime
) -> ReportScope:
    """The period and department a report's query asks for, as ``key`` may read them: from the first day's
    start (or the time given) to the last day's end (or now). ``InvalidInput`` (422) names a wrong field,
    a day or time the calendar cannot hold in ``timezone`` too; ``Forbidden`` (403) another department's
    figures for a key that is not an admin's."""
    asked = validate_query(model, query)
    try:
        start = period_start(asked.from_, timezone)
    except OverflowError:
        raise _outside_calendar("from") from None
    try:
        end = period_end(asked.to, timezone, now)
    except OverflowError:
        raise _outside_calendar("to") from None
    return ReportScope(start, end, department_in_scope(key, getattr(asked, "department", None)))


def _outside_calendar(name: str) -> InvalidInput:
    error = FieldError(f"query.{name}", "outside the calendar in the service's time zone", "out_of_range")
    return InvalidInput(f"query.{name} is outside the calendar", [error])


async def table_download(tables: dict[str, Table], name: str, fmt: Literal["csv", "xlsx"]) -> web.Response:
    """A report's tables as a file to save: one CSV table, or an XLSX workbook (built off the event loop)."""
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "xlsx":
        body = await asyncio.to_thread(to_xlsx, tables)
        return web.Response(body=body, content_type=XLSX_MEDIA, headers=headers)
    return web.Response(text=to_csv(tables), content_type=CSV_MEDIA, charset="utf-8", headers=headers)


async def _answer(request: web.Request, report: BaseModel, tables: dict[str, Table], name: str) -> web.Response:
    if _accepts(request, XLSX_MEDIA):
        return await table_download(tables, name, "xlsx")
    if _accepts(request, CSV_MEDIA):
        return await table_download(tables, name, "csv")
    return web.Response(text=report.model_dump_json(by_alias=True), content_type="application/json", charset="utf-8")


async def get_reach_report(request: web.Request) -> web.Response:
    key = await require(request)
    scope = report_scope(key, request.query, ReachQuery, request.app[SETTINGS].server.timezone, datetime.now(UTC))
    report = await reach_report(request.app[STORE], scope.start, scope.end, scope.department)
    return await _answer(request, report, reach_tables(report), "reach")


async def get_department_report(request: web.Request) -> web.Response:
    key = await require(request)
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    scope = report_scope(key, request.query, PeriodQuery, settings.server.timezone, now)
    report = await assessment_report(
        request.app[STORE], settings.approval, scope.start, scope.end, scope.department, now
    )
    return await _answer(request, report, assessment_tables(report), "departments")


_TABLE_MEDIA = {
    CSV_MEDIA: {"type": "string", "description": "one table: scope (the part of the report), then its columns"},
    XLSX_MEDIA: {"type": "string", "format": "binary", "description": "one sheet per part of the report"},
}
ROUTES = [
    Route(
        "GET",
        "/api/v1/reports/reach",
        get_reach_report,
        "Reach of the notices released (approved or sent by override) in a period, per notice, department, "
        "channel, town and village; "
        "JSON, or CSV / XLSX by Accept",
        "reports",
        query=ReachQuery,
        response=ReachReport,
        success_media=_TABLE_MEDIA,
        extra_responses={403: "another department's figures (only admins read every department)"},
    ),
    Route(
        "GET",
        "/api/v1/reports/departments",
        get_department_report,
        "The assessment per department for a period: notices issued, on-time approval, reach; "
        "JSON, or CSV / XLSX by Accept",
        "reports",
        query=PeriodQuery,
        response=AssessmentReport,
        success_media=_TABLE_MEDIA,
    ),
]
