"""Relief rosters in the console: the department's rosters, the upload with its per-row report, and the
publicity preview of a roster.

    GET  /console/rosters                    the department's rosters (everyone's for an admin), the upload form
    POST /console/rosters                    upload a CSV or XLSX roster, then its page (303); ``direct``: an
                                             unmatched row's mobile number is reached directly (statutory)
    GET  /console/rosters/{id}               the report (rows, matched, unmatched rows with their reasons) and
                                             the publicity preview: chosen columns of one village, masked
    GET  /console/rosters/{id}/unmatched.csv the unmatched rows (row number, reason, cells) as CSV

The upload is the API's (``notifier.api.rosters.read_upload`` and ``store_roster``, as
``POST /api/v1/rosters``); the preview is the public page's and the printout's table
(``notifier.engine.publicity.publicity_table``), masked there: the console never shows it unmasked.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import ValidationError

from notifier.api.problems import invalid_from_validation
from notifier.api.rosters import RosterForm, read_upload, store_roster
from notifier.api.routing import path_int
from notifier.console.compose_form import area_tree
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import PublicityIn
from notifier.domain.spreadsheet import csv_row
from notifier.engine.publicity import RESIDENT_COLUMNS, publicity_table
from subscribers.roster_rows import CSV_AND_XLSX

ROSTERS_PATH = "/console/rosters"
UPLOADERS = (Role.ISSUER,)
CSV_PAGE = 1000


async def _list_page(console: Console, status: int = 200, **context: Any) -> web.Response:
    key = console.staff.as_key()
    rosters = await console.store.list_rosters(None if key.role == Role.ADMIN else key.department)
    context = {"errors": {}, "values": {}, **context}
    return console.render("rosters.html", status=status, rosters=rosters, **context)


@page()
async def rosters(request: web.Request, console: Console) -> web.StreamResponse:
    return await _list_page(console)


@page(roles=UPLOADERS)
async def upload(request: web.Request, console: Console) -> web.StreamResponse:
    t = console.t
    form_values = {name: console.field(name, 200) for name in ("name", "key")}
    form_values["direct"] = "true" if console.field("direct", 10) == "true" else "false"
    try:
        form = RosterForm.model_validate(form_values)
        file = console.form.get("file")
        if not isinstance(file, FileField) or not file.filename:
            raise InvalidInput(
                "no file", [FieldError("file", t("请选择一个 CSV 或 XLSX 文件", "Choose a CSV or XLSX file"))]
            )
        suffix = Path(file.filename).suffix.lower()
        if suffix not in CSV_AND_XLSX:
            raise InvalidInput(
                "cannot read the file",
                [FieldError("file", t("只能上传 .csv 或 .xlsx 文件", "Only .csv and .xlsx files"))],
            )
        data = await asyncio.to_thread(file.file.read)
        table = await read_upload(data, suffix)
        report = await store_roster(
            console.store,
            console.staff.as_key(),
            name=form.name,
            key_column=form.key,
            table=table,
            direct=form.direct,
        )
    except (InvalidInput, ValidationError) as exc:
        problem = invalid_from_validation(exc) if isinstance(exc, ValidationError) else exc
        errors = {e.loc.split(".")[0]: e.msg for e in problem.errors}
        return await _list_page(console, 422, errors=errors or {"file": problem.detail}, values=form_values)
    raise redirect(f"{ROSTERS_PATH}/{report['id']}")


async def _preview(console: Console, report: dict[str, Any]) -> dict[str, Any]:
    """The preview form's choices and, when columns are chosen, the masked table; ``problem``, why there is no
    table for the columns chosen (more than a publicity list takes, a column name it refuses)."""
    query = console.request.query
    asked = [c for c in query.getall("column", []) if c in report["columns"] or c in RESIDENT_COLUMNS]
    columns = list(dict.fromkeys(asked))  # a column ticked twice (a hand-made URL) is shown once
    area = str(query.get("area", ""))[:20]
    context: dict[str, Any] = {
        "towns": area_tree(await console.store.list_areas()),
        "resident_columns": RESIDENT_COLUMNS,
        "chosen": columns,
        "area": area,
        "table": None,
        "problem": None,
    }
    if columns and report["erased_at"] is None:
        today = date.today()
        try:
            publicity = PublicityIn.model_validate(
                {"roster": report["id"], "columns": columns, "from": today.isoformat(),
                 "until": (today + timedelta(days=6)).isoformat(), "complaint_phone": "000"}
            )  # fmt: skip
        except ValidationError as exc:
            context["problem"] = "; ".join(e.msg for e in invalid_from_validation(exc).errors)
            return context
        context["table"] = await publicity_table(console.store, publicity, area or None)
    return context


@page()
async def roster(request: web.Request, console: Console) -> web.StreamResponse:
    found = await console.store.roster_for_key(console.staff.as_key(), path_int(request, "id"))
    report = await console.store.roster_report(int(found["id"]))
    preview = await _preview(console, report)
    return console.render("roster.html", status=422 if preview["problem"] else 200, report=report, **preview)


@page(same_origin=True)
async def unmatched_csv(request: web.Request, console: Console) -> web.StreamResponse:
    store = console.store
    found = await store.roster_for_key(console.staff.as_key(), path_int(request, "id"))
    roster_id = int(found["id"])
    report = await store.roster_report(roster_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "reason", *report["columns"]])
    after, written = 0, 0
    while rows := await store.roster_rows_page(roster_id, after, CSV_PAGE):
        for row in rows:
            if row["reason"] is not None:
                cells = (row["cells"].get(column) for column in report["columns"])
                writer.writerow(csv_row([row["row_no"], row["reason"], *cells]))
                written += 1
        after = int(rows[-1]["row_no"])
    await store.audit(console.staff.actor, "roster.read", "roster", roster_id, {"rows": written, "unmatched": True})
    headers = {"Content-Disposition": f'attachment; filename="roster-{roster_id}-unmatched.csv"'}
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv",
                        charset="utf-8", headers=headers)  # fmt: skip


NAV_ITEMS = [NavItem(ROSTERS_PATH, "名单", "Rosters")]
ROUTES = [
    ("GET", ROSTERS_PATH, rosters),
    ("POST", ROSTERS_PATH, upload),
    ("GET", f"{ROSTERS_PATH}/{{id}}", roster),
    ("GET", f"{ROSTERS_PATH}/{{id}}/unmatched.csv", unmatched_csv),
]
