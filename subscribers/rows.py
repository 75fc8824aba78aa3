"""The import format of a roster: its columns, and how one row becomes a ``SubscriberIn``.

Columns (header row; order free; only ``name`` and ``area_code`` are required)::

    external_id, name, phone, email, wechat_openid, wecom_userid, area_code,
    groups, topics, channels, language, quiet_hours, consent_source

A civil-affairs clerk may write the Chinese headers of ``HEADER_ALIASES`` instead. List cells (groups,
topics, channels) are separated by ``;``, ``|``, ``、`` or ``,``; a group or topic may be given by its code
or its Chinese name, a channel by its code or ``短信 微信 企业微信 邮件``. Quiet hours read ``22:00-07:00``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import SubscriberIn
from notifier.domain.text import ascii_digits, single_line
from notifier.store import Store
from subscribers.sheets import Cells

COLUMNS = (
    "external_id",
    "name",
    "phone",
    "email",
    "wechat_openid",
    "wecom_userid",
    "area_code",
    "groups",
    "topics",
    "channels",
    "language",
    "quiet_hours",
    "consent_source",
)
REQUIRED_COLUMNS = ("name", "area_code")
HEADER_ALIASES = {
    "编号": "external_id",
    "姓名": "name",
    "手机号": "phone",
    "手机号码": "phone",
    "电话": "phone",
    "联系电话": "phone",
    "邮箱": "email",
    "电子邮箱": "email",
    "村居代码": "area_code",
    "区划代码": "area_code",
    "群体": "groups",
    "分组": "groups",
    "订阅主题": "topics",
    "渠道": "channels",
}
CHANNEL_ALIASES = {"短信": "sms", "微信": "wechat", "企业微信": "wecom", "邮件": "email", "邮箱": "email"}
PERSONAL_COLUMNS = ("name", "phone", "email", "wechat_openid", "wecom_userid")

_LIST_COLUMNS = ("groups", "topics", "channels")
_SEPARATORS = re.compile(r"[;|、,，；]")
_QUIET_HOURS = re.compile(r"([0-9]{1,2}:[0-9]{2})\s*[-~–—－至到]\s*([0-9]{1,2}:[0-9]{2})")
_EXCEL_FLOAT = re.compile(r"^([0-9]+)\.0+$")


@dataclass(frozen=True)
class RowError:
    """One invalid field of one row; ``row`` is the spreadsheet's row number (the header is row 1)."""

    row: int
    external_id: str | None
    field: str
    message: str


@dataclass
class Row:
    """A parsed data row: valid ``data``, or the ``errors`` that keep it out."""

    number: int
    external_id: str | None
    data: SubscriberIn | None = None
    errors: list[RowError] = field(default_factory=list)


# --- header ----------------------------------------------------------------------------------------


def column_name(raw: str) -> str | None:
    """The column a header cell names, or None when unknown (``Area Code``, ``区划代码*`` are fine)."""
    text = raw.strip().lstrip("\ufeff").rstrip("*＊").strip()
    if text in HEADER_ALIASES:
        return HEADER_ALIASES[text]
    key = re.sub(r"[\s-]+", "_", text.lower())
    return key if key in COLUMNS else None


def map_header(header: Cells) -> dict[str, int]:
    """Column name -> cell index; raise InvalidInput naming unknown, doubled and missing columns."""
    columns: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, raw in enumerate(header):
        if raw is None:
            continue  # an unnamed column (Excel formatting beyond the table) is ignored
        name = column_name(raw)
        if name is None:
            errors.append(FieldError(f"columns.{raw}", "unknown column", "unknown_column"))
        elif name in columns:
            errors.append(FieldError(f"columns.{raw}", f"a second {name} column", "duplicate_column"))
        else:
            columns[name] = index
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            errors.append(FieldError(f"columns.{name}", "required column missing", "missing_column"))
    if errors:
        unknown = [e.loc.removeprefix("columns.") for e in errors if e.type == "unknown_column"]
        detail = "the header row does not fit the import format"
        if unknown:
            detail = f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})"
        raise InvalidInput(detail, errors)
    return columns


# --- catalog ---------------------------------------------------------------------------------------


@dataclass
class Catalog:
    """What rows may refer to: area codes, and group and topic codes by code or Chinese name."""

    areas: set[str]
    groups: dict[str, str]
    topics: dict[str, str]

    @classmethod
    async def load(cls, store: Store) -> Catalog:
        groups: dict[str, str] = {}
        topics: dict[str, str] = {}
        for lister, names in ((store.list_groups, groups), (store.list_topics, topics)):
            cursor: str | None = None
            while True:
                items, cursor = await lister(cursor, 500)
                for item in items:
                    names[item.name] = item.code
                    names[item.code] = item.code
                if cursor is None:
                    break
        return cls({a.code for a in await store.list_areas()}, groups, topics)


# --- one row ---------------------------------------------------------------------------------------


def parse_row(number: int, cells: Cells, columns: dict[str, int], catalog: Catalog, consent: str) -> Row:
    """Validate one row with SubscriberIn and the catalog; ``consent`` is the default consent_source."""
    raw = {name: cells[i] or "" for name, i in columns.items() if i < len(cells) and cells[i]}
    values, refused = _single_lines(raw)
    for name in ("phone", "area_code", "external_id"):  # numbers a CSV tool wrote as 13812345678.0
        if name in values:
            values[name] = _EXCEL_FLOAT.sub(r"\1", values[name])
    data, errors = _fields(values, catalog)
    data.setdefault("consent_source", consent)
    row = Row(number, values.get("external_id"))
    try:
        row.data = SubscriberIn.model_validate(data)
    except ValidationError as exc:
        errors = [_field_error(e) for e in exc.errors() if str(e["loc"][0]) not in refused] + errors
    errors = list(refused.values()) + errors
    if errors:
        row.data = None
        row.errors = [RowError(number, row.external_id, e.loc, scrub(e.msg, values)) for e in errors]
    return row


def _single_lines(cells: dict[str, str]) -> tuple[dict[str, str], dict[str, FieldError]]:
    """Every cell is one line of text: NFC-normalised, or refused when it holds a control or invisible character."""
    values: dict[str, str] = {}
    refused: dict[str, FieldError] = {}
    for name, text in cells.items():
        try:
            values[name] = single_line(text)
        except ValueError as exc:
            refused[name] = FieldError(name, str(exc), "control_character")
    return values, refused


def _fields(values: dict[str, str], catalog: Catalog) -> tuple[dict[str, Any], list[FieldError]]:
    """Cells to SubscriberIn input: lists split, quiet hours parsed, names mapped to codes."""
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, text in values.items():
        if name in _LIST_COLUMNS:
            data[name] = [item.strip() for item in _SEPARATORS.split(text) if item.strip()]
        elif name == "quiet_hours":
            match = _QUIET_HOURS.fullmatch(text)
            if match:
                data[name] = {"start": match.group(1).zfill(5), "end": match.group(2).zfill(5)}
            else:
                errors.append(FieldError(name, "write quiet hours as HH:MM-HH:MM, e.g. 22:00-07:00"))
        else:
            data[name] = text
    if data.get("channels"):
        data["channels"] = [CHANNEL_ALIASES.get(c, c.lower()) for c in data["channels"]]
    else:
        data.pop("channels", None)  # absent or empty: SubscriberIn's default order
    for name, known in (("groups", catalog.groups), ("topics", catalog.topics)):
        codes = [known.get(c) or known.get(c.lower()) or c for c in data.get(name, [])]
        errors += [FieldError(name, f"unknown {name[:-1]} {c}") for c in codes if c not in known]
        if name in data:
            data[name] = codes
    area = data.get("area_code", "")
    if ascii_digits(area) and len(area) in (6, 9, 12) and area not in catalog.areas:
        errors.append(FieldError("area_code", f"unknown area code {area}"))
    return data, errors


def _field_error(error: Any) -> FieldError:
    loc = ".".join(str(part) for part in error["loc"]) or "row"
    return FieldError(loc, str(error["msg"]).removeprefix("Value error, "), str(error["type"]))


def scrub(message: str, values: dict[str, Any]) -> str:
    """A message without the row's name or contact points in it (reports and logs stay impersonal)."""
    for name in PERSONAL_COLUMNS:
        value = values.get(name)
        if isinstance(value, str) and len(value) > 1 and value in message:
            message = message.replace(value, "…")
    return message
