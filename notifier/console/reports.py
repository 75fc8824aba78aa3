"""The reports page: the reach report and the department assessment of a period, as tables and SVG charts drawn
on the server, with both reports to download as CSV and XLSX.

    GET /console/reports?from=&to=&department=                 the page (any signed-in staff member)
    GET /console/reports/{reach|departments}.{csv|xlsx}?...   the same report as the API gives it

The figures are those of ``GET /api/v1/reports/reach`` and ``/reports/departments`` (``notifier.reports``),
scoped as the API scopes a key: a department's staff see their own department, an admin every department or
the one chosen. ``from`` and ``to`` are days (server time zone), both included; empty means open-ended.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from notifier.api.keys import SETTINGS
from notifier.api.reports import ReachQuery, report_scope, table_download
from notifier.console.charts import Chart, Series, bar_chart
from notifier.console.framework import Console, NavItem, page
from notifier.console.i18n import Translator
from notifier.domain.enums import Role
from notifier.report_formats import assessment_tables, reach_tables
from notifier.reports import AssessmentReport, ReachReport, assessment_report, reach_report

REPORTS_PATH = "/console/reports"
_QUERY_FIELDS = ("from", "to", "department")


async def _reports(console: Console) -> tuple[ReachReport, AssessmentReport, dict[str, str]]:
    """Both reports for the period and department asked (the form's empty fields left out), read as the API
    reads them; a wrong field is the console's error page (422), another department's figures a 403."""
    asked = {name: console.request.query[name] for name in _QUERY_FIELDS if console.request.query.get(name)}
    settings = console.request.app[SETTINGS]
    now = datetime.fromtimestamp(console.now(), UTC)
    scope = report_scope(console.staff.as_key(), asked, ReachQuery, settings.server.timezone, now)
    reach = await reach_report(console.store, scope.start, scope.end, scope.department)
    assessment = await assessment_report(
        console.store, settings.approval, scope.start, scope.end, scope.department, now
    )
    return reach, assessment, asked


def charts(reach: ReachReport, assessment: AssessmentReport, t: Translator) -> list[Chart]:
    """The page's charts, each drawn from the report's own figures."""
    rate = Series("reach_rate", t("触达率", "reach rate"), percent=True)
    sent = Series("sent_rate", t("发出率", "sent rate"), percent=True)
    return [
        bar_chart(
            "chart-towns",
            t("各乡镇触达率", "Reach rate per town"),
            [rate],
            [(town.town, town.name or town.town, [town.reach_rate]) for town in reach.towns],
        ),
        bar_chart(
            "chart-channels",
            t("各渠道触达率和发出率", "Reach and sent rate per channel"),
            [rate, sent],
            [(c.channel, t("channel." + c.channel), [c.reach_rate, c.sent_rate]) for c in reach.channels],
        ),
        bar_chart(
            "chart-departments",
            t("各部门触达率和按时审批率", "Reach rate and on-time approval per department"),
            [rate, Series("on_time_rate", t("按时审批率", "on-time approval"), percent=True)],
            [(d.department, d.name, [d.reach_rate, d.on_time_rate]) for d in assessment.departments],
        ),
        bar_chart(
            "chart-feedback",
            t("各部门意见按时答复", "Feedback answered in time per department"),
            [Series("feedback_in_time_rate", t("按时答复率", "answered in time"), percent=True)],
            [(d.department, d.name, [d.feedback_in_time_rate]) for d in assessment.departments],
        ),
    ]


@page()
async def reports_page(request: web.Request, console: Console) -> web.StreamResponse:
    reach, assessment, asked = await _reports(console)
    departments = await console.store.department_names() if console.staff.role is Role.ADMIN else {}
    query = urlencode(asked)
    return console.render(
        "reports.html",
        reach=reach,
        assessment=assessment,
        charts=charts(reach, assessment, console.t),
        asked=asked,
        departments=departments,
        downloads={
            (name, fmt): f"{REPORTS_PATH}/{name}.{fmt}" + (f"?{query}" if query else "")
            for name in ("reach", "departments")
            for fmt in ("csv", "xlsx")
        },
    )


@page()
async def report_download(request: web.Request, console: Console) -> web.StreamResponse:
    reach, assessment, _ = await _reports(console)
    name, fmt = request.match_info["name"], request.match_info["format"]
    tables = reach_tables(reach) if name == "reach" else assessment_tables(assessment)
    return await table_download(tables, name, "xlsx" if fmt == "xlsx" else "csv")


NAV_ITEMS = [NavItem(REPORTS_PATH, "统计报表", "Reports")]
ROUTES = [
    ("GET", REPORTS_PATH, reports_page),
    ("GET", REPORTS_PATH + "/{name:reach|departments}.{format:csv|xlsx}", report_download),
]
