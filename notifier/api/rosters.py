"""Relief rosters: upload (JSON rows or a CSV/XLSX file), read with the per-row report, erase."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from aiohttp import BodyPartReader, web
from aiohttp.helpers import parse_mimetype
from pydantic import BaseModel, Field, ValidationError

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.problems import invalid_from_validation
from notifier.api.routing import Route, json_response, page_response, path_int, read_body, read_query
from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import ApiKeyInfo, Name, RosterColumn, Strict
from notifier.store import Store
from notifier.store.common import decode_cursor, encode_cursor
from subscribers.roster_rows import CSV_AND_XLSX, RosterTable, read_roster_file, table_from_rows
from subscribers.sheet_slots import sheet_slot

RosterKey = Literal["phone", "external_id", "resident_id"]
Cell = Annotated[str, Field(max_length=500)] | int | float | None
MULTIPART = "multipart/form-data"


class RosterIn(Strict):
    name: Name
    key: RosterKey = Field(description="the column that identifies the resident: a phone, external_id or resident id")
    rows: list[dict[RosterColumn, Cell]] = Field(min_length=1, max_length=100_000, description="one per recipient")
    direct: bool = Field(
        False,
        description="send to the phone number of a row that matches no resident (a statutory notice to a "
        "beneficiary, kept with that consent basis, not as a subscription)",
    )


class UnmatchedRow(BaseModel):
    row: int = Field(description="data row, counted from 1 (the spreadsheet's row minus its header)")
    reason: str


class Roster(BaseModel):
    id: int
    department: str
    name: str
    key: RosterKey
    columns: list[str]
    rows: int = Field(description="data rows read")
    matched: int = Field(description="rows that reach someone: a resident, or a phone number with direct")
    direct: int = Field(description="of those, rows sent to their phone number directly")
    unmatched: list[UnmatchedRow]
    created_at: str
    erased_at: str | None = Field(description="when its rows were erased (retention or DELETE); null while kept")


class RosterRow(BaseModel):
    row: int
    subscriber_id: int | None
    cells: dict[str, str]
    reason: str | None


_FORM_SCHEMA = {
    "type": "object",
    "required": ["file", "name", "key"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV (UTF-8 or GB18030) or XLSX"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "key": {"type": "string", "enum": ["phone", "external_id", "resident_id"]},
        "direct": {"type": "string", "enum": ["true", "false"]},
    },
}


class RosterForm(Strict):
    name: Name
    key: RosterKey
    direct: bool = False


async def read_form(request: web.Request) -> tuple[RosterForm, RosterTable]:
    """A multipart upload: the file read in a thread (openpyxl parses on the CPU), the fields validated."""
    fields: dict[str, str] = {}
    table: RosterTable | None = None
    if not parse_mimetype(request.headers.get("Content-Type", "")).parameters.get("boundary"):
        raise web.HTTPBadRequest(text="a multipart/form-data body needs its boundary parameter")
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise InvalidInput("nested multipart", [FieldError("body", "a flat multipart/form-data form")])
        if part.name == "file":
            table = await _read_file_part(part)
        elif part.name in ("name", "key", "direct"):
            fields[part.name] = (await part.read(decode=True)).decode("utf-8", errors="replace")
        else:
            raise InvalidInput("unknown field", [FieldError(str(part.name), "not a field of this form")])
    try:
        form = RosterForm.model_validate(fields)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None
    if table is None:
        raise InvalidInput("no file", [FieldError("file", "a CSV or XLSX file is required")])
    return form, table


async def _read_file_part(part: BodyPartReader) -> RosterTable:
    suffix = Path(part.filename or "").suffix.lower()
    if suffix not in CSV_AND_XLSX:
        raise InvalidInput("cannot read the file", [FieldError("file", "a .csv or .xlsx file")])
    data = await part.read(decode=False)
    return await read_upload(bytes(data), suffix)


async def read_upload(data: bytes, suffix: str) -> RosterTable:
    """The roster in an uploaded file's bytes, read in a thread once one of the process's spreadsheet slots is
    free (``subscribers.sheet_slots``)."""
    async with sheet_slot():
        return await asyncio.to_thread(read_uploaded, data, suffix)


def read_uploaded(data: bytes, suffix: str) -> RosterTable:
    """The roster in an uploaded file's bytes (synchronous: the sheet readers need a path)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"roster{suffix}"
        path.write_bytes(data)
        return read_roster_file(path)


async def create_roster(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    if request.content_type == MULTIPART:
        form, table = await read_form(request)
        name, roster_key, direct = form.name, form.key, form.direct
    else:
        body = await read_body(request, RosterIn)
        table = table_from_rows([{str(k): v for k, v in row.items()} for row in body.rows])
        name, roster_key, direct = body.name, body.key, body.direct
    report = await store_roster(request.app[STORE], key, name=name, key_column=roster_key, table=table, direct=direct)
    return json_response(Roster(**report), 201)


async def store_roster(
    store: Store, key: ApiKeyInfo, *, name: str, key_column: str, table: RosterTable, direct: bool
) -> dict[str, Any]:
    """Store a read roster for the key's department and give its report: the API's and the console's upload."""
    if not table.rows:
        raise InvalidInput("the roster has no rows", [FieldError("rows", "at least one data row")])
    roster_id = await store.create_roster(
        department=key.department, name=name, key=key_column, table=table, direct=direct, actor=actor(key)
    )
    return await store.roster_report(roster_id)


async def get_roster(request: web.Request) -> web.Response:
    key = await require(request)
    store = request.app[STORE]
    roster = await store.roster_for_key(key, path_int(request, "id"))
    return json_response(Roster(**await store.roster_report(int(roster["id"]))))


async def list_roster_rows(request: web.Request) -> web.Response:
    key = await require(request)
    store = request.app[STORE]
    roster = await store.roster_for_key(key, path_int(request, "id"))
    query = read_query(request, PageQuery)
    rows = await store.roster_rows_page(int(roster["id"]), decode_cursor(query.cursor) or 0, query.limit + 1)
    await store.audit(actor(key), "roster.read", "roster", roster["id"], {"rows": min(len(rows), query.limit)})
    items = [
        RosterRow(row=r["row_no"], subscriber_id=r["subscriber_id"], cells=r["cells"], reason=r["reason"])
        for r in rows[: query.limit]
    ]
    return page_response(items, encode_cursor(items[-1].row) if len(rows) > query.limit else None)


async def delete_roster(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    store = request.app[STORE]
    roster = await store.roster_for_key(key, path_int(request, "id"))
    await store.erase_roster(int(roster["id"]), actor(key), reason="deleted")
    return web.Response(status=204)


def _multipart_content() -> dict[str, Any]:
    return {MULTIPART: _FORM_SCHEMA}


ROUTES = [
    Route(
        "POST",
        "/api/v1/rosters",
        create_roster,
        "Upload a roster (JSON rows, or a CSV/XLSX file as multipart) and get the per-row report",
        "rosters",
        body=RosterIn,
        content=_multipart_content(),
        response=Roster,
        status=201,
        roles=("issuer", "admin"),
        extra_responses={400: "a multipart form that cannot be parsed"},
    ),
    Route(
        "GET",
        "/api/v1/rosters/{id}",
        get_roster,
        "A roster of the department, with its report",
        "rosters",
        response=Roster,
    ),
    Route(
        "GET",
        "/api/v1/rosters/{id}/rows",
        list_roster_rows,
        "A roster's rows (personal data: each read is audited)",
        "rosters",
        query=PageQuery,
        response=RosterRow,
        response_list=True,
    ),
    Route(
        "DELETE",
        "/api/v1/rosters/{id}",
        delete_roster,
        "Erase a roster's rows now (audited)",
        "rosters",
        status=204,
        roles=("issuer", "admin"),
        extra_responses={409: "a notice that has not ended still uses the roster"},
    ),
]

__all__ = ["ROUTES"]
