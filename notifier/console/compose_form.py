"""The compose form and the notice it stands for: form fields to the API's ``NoticeIn`` and back, and the
choices the form offers (topics, templates and their fields, the area tree, groups, channels).

The form's field names are the paths of ``NoticeIn`` (``title``, ``target.areas``, ``data.level``...), so an
error the API's validation names (``target.areas.0``) is shown next to the field it belongs to. Times are typed
as the server's local time (``[server] timezone``) and sent on as RFC 3339 with that offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from multidict import MultiDictProxy
from pydantic import ValidationError

from notifier.api.problems import field_errors
from notifier.domain.enums import ChannelMode, Severity
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import Area, Notice, NoticeIn
from notifier.engine.render import DEFAULT_TEMPLATE
from notifier.store import Store

TEXT, TEMPLATE = "text", "template"
SCALARS = (
    "topic", "title", "body", "template", "severity", "channel_mode", "target.combine", "target.roster", "send_at",
    "expires_at", "publicity.roster", "publicity.from", "publicity.until", "publicity.complaint_phone",
    "publicity.paper",
)  # fmt: skip
LISTS = ("target.areas", "target.groups", "target.topics", "channels", "publicity.columns", "publicity.masks")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">


@dataclass
class ComposeValues:
    """What the form holds, as typed: shown back after a refusal or a preview."""

    scalars: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    content: str = TEXT

    def get(self, name: str, default: str = "") -> str:
        return self.scalars.get(name) or default

    def has(self, name: str, value: str) -> bool:
        return value in self.lists.get(name, [])


@dataclass(frozen=True)
class TemplateChoice:
    name: str
    description: str
    fields: list[tuple[str, str]]  # (name, label)


def read_values(form: MultiDictProxy[Any], limit: int = 10_000) -> ComposeValues:
    """The posted form as typed (text fields cut at ``limit`` characters; files ignored)."""

    def text(value: object) -> str:
        return value[:limit] if isinstance(value, str) else ""

    values = ComposeValues(content=TEMPLATE if form.get("content") == TEMPLATE else TEXT)
    for name in SCALARS:
        values.scalars[name] = text(form.get(name, ""))
    for name in LISTS:
        values.lists[name] = [text(v) for v in form.getall(name, []) if text(v)][:2000]
    template = values.scalars.get("template", "")
    prefix = f"data.{template}."
    for name in form:
        if template and name.startswith(prefix):
            values.data[name.removeprefix(prefix)] = text(form.get(name))
    return values


def to_notice(values: ComposeValues, timezone: str) -> NoticeIn:
    """The API's notice for the form; InvalidInput naming the form's fields otherwise."""
    payload: dict[str, Any] = {
        "topic": values.get("topic"),
        "title": values.get("title"),
        "severity": values.get("severity", Severity.INFO.value),
        "channel_mode": values.get("channel_mode", ChannelMode.FIRST_AVAILABLE.value),
        "channels": values.lists.get("channels", []),
        "target": {
            "areas": values.lists.get("target.areas", []),
            "groups": values.lists.get("target.groups", []),
            "topics": values.lists.get("target.topics", []),
            "combine": values.get("target.combine", "any"),
        },
    }
    if values.get("target.roster"):
        payload["target"]["roster"] = values.get("target.roster")
    if values.get("publicity.roster"):
        payload["publicity"] = _publicity(values)
    if values.content == TEMPLATE:
        payload["template"] = values.get("template") or None
        payload["data"] = {name: value for name, value in values.data.items() if value.strip()}
    else:
        payload["body"] = values.get("body") or None
    errors: list[FieldError] = []
    for name in ("send_at", "expires_at"):
        raw = values.get(name)
        if raw:
            try:
                payload[name] = datetime.strptime(raw, LOCAL_FORMAT).replace(tzinfo=ZoneInfo(timezone)).isoformat()
            except ValueError:
                errors.append(FieldError(name, "expected a date and time like 2026-12-01T08:00"))
    if errors:
        raise InvalidInput(f"{len(errors)} invalid field(s)", errors)
    try:
        return NoticeIn.model_validate(payload)
    except ValidationError as exc:
        found = field_errors(exc)
        raise InvalidInput(f"{len(found)} invalid field(s)", found) from None


def _publicity(values: ComposeValues) -> dict[str, Any]:
    """The form's publicity list (公示) as the API's ``publicity``: the roster, the columns shown, each column
    ticked under "hide entirely" masked ``full``, the period, the complaint phone and the paper."""
    columns = values.lists.get("publicity.columns", [])
    return {
        "roster": values.get("publicity.roster"),
        "columns": columns,
        "from": values.get("publicity.from") or None,
        "until": values.get("publicity.until") or None,
        "complaint_phone": values.get("publicity.complaint_phone"),
        "masks": {column: "full" for column in values.lists.get("publicity.masks", [])},
        "paper": values.get("publicity.paper", "A4"),
    }


def from_notice(notice: Notice, timezone: str) -> ComposeValues:
    """The form filled with a stored notice (to edit a draft or a rejected notice)."""
    zone = ZoneInfo(timezone)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime(LOCAL_FORMAT) if moment else ""

    values = ComposeValues(content=TEMPLATE if notice.template else TEXT)
    values.scalars = {
        "topic": notice.topic,
        "title": notice.title,
        "body": notice.body or "",
        "template": notice.template or "",
        "severity": notice.severity.value,
        "channel_mode": notice.channel_mode.value,
        "target.combine": notice.target.combine,
        "target.roster": "" if notice.target.roster is None else str(notice.target.roster),
        "send_at": local(notice.send_at),
        "expires_at": local(notice.expires_at),
    }
    values.lists = {
        "target.areas": list(notice.target.areas),
        "target.groups": list(notice.target.groups),
        "target.topics": list(notice.target.topics),
        "channels": [kind.value for kind in notice.channels],
    }
    values.data = {name: str(value) for name, value in notice.data.items()}
    if notice.publicity is not None:
        publicity = notice.publicity
        values.scalars |= {
            "publicity.roster": str(publicity.roster),
            "publicity.from": publicity.from_date.isoformat(),
            "publicity.until": publicity.until.isoformat(),
            "publicity.complaint_phone": publicity.complaint_phone,
            "publicity.paper": publicity.paper,
        }
        values.lists["publicity.columns"] = list(publicity.columns)
        values.lists["publicity.masks"] = sorted(publicity.masks)
    return values


def errors_by_field(errors: list[FieldError]) -> dict[str, str]:
    """Each error under the form field it belongs to (``target.areas.0`` -> ``target.areas``); errors of the whole
    notice under ""."""
    fields = (*SCALARS, *LISTS)
    shown: dict[str, str] = {}
    for error in errors:
        name = next((f for f in fields if error.loc == f or error.loc.startswith(f + ".")), None)
        if name is None and error.loc.startswith("data."):
            name = error.loc
        shown.setdefault(name or "", error.msg)
    return shown


async def template_choices(store: Store, department: str) -> list[TemplateChoice]:
    """The templates a notice may name (the built-in ones and the department's own; not ``notice``, which a free
    text uses), with the fields each declares: what its ``data`` must carry."""
    versions, _ = await store.list_templates(None, 500)
    return [
        TemplateChoice(v.name, v.description, [(f.name, f.label or f.name) for f in v.fields])
        for v in versions
        if v.name != DEFAULT_TEMPLATE and v.department in (None, department)
    ]


@dataclass(frozen=True)
class Town:
    code: str
    name: str
    villages: list[Area]


def area_tree(areas: list[Area]) -> list[Town]:
    """Towns in code order, each with its villages."""
    towns = {area.code: Town(area.code, area.name, []) for area in areas if area.level == "town"}
    for area in areas:
        if area.level == "village" and area.parent in towns:
            towns[area.parent].villages.append(area)
    return [towns[code] for code in sorted(towns)]
