"""Reach reports and the department assessment, counted from the deliveries of the notices of a period.

Definitions (docs/api.md, "Reports"):

- the period picks notices by the moment each figure is about: the reach report covers the notices *released*
  in the period (approved, or sent by emergency override; a notice released without a recorded approval time
  by its creation), so a notice drafted in one month and sent in the next counts in the next; the assessment
  counts ``notices_created`` by creation, ``notices_submitted`` and the approvals due by submission (or
  override), ``notices_issued``, the reach and the overdue overrides by release;
- ``targeted``: residents with at least one message (delivery) of the notice; ``reached``: residents with at
  least one message delivered or confirmed; ``sent_to``: residents with at least one message accepted by a
  provider. ``reach_rate`` = reached / targeted; ``sent_rate`` = sent_to / targeted (channels that never
  report delivery, such as e-mail, count only there);
- message counts per state: ``sent`` counts every message a provider accepted (states sent, delivered,
  confirmed), ``delivered`` those delivered or confirmed, ``confirmed`` those confirmed, ``failed`` (with
  ``failed_by_reason``: the reason code before the first colon of the error), ``fallback`` (handed to the
  resident's next channel), ``skipped`` and ``pending`` (queued or sending);
- ``minutes_to_50_percent`` / ``minutes_to_90_percent``: from the notice's release (approval, or override) to
  the moment half (nine in ten) of its targeted residents had a delivered message; null until then;
- ``printouts``: notice-board printouts sent, per village.

Aggregates over several notices add residents per notice (a resident targeted by two notices counts twice).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from notifier.config import ApprovalConfig
from notifier.domain.enums import NoticeState, Severity
from notifier.store import Store
from notifier.store.database import Row

UNRELEASED = {NoticeState.DRAFT.value, NoticeState.PENDING_APPROVAL.value, NoticeState.REJECTED.value}
SENT_STATES = {"sent", "delivered", "confirmed"}
DELIVERED_STATES = {"delivered", "confirmed"}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_OFFSET = re.compile(r"T.*[0-9]([+-](?P<hours>[0-9]{2}):?(?P<minutes>[0-9]{2}))$", re.IGNORECASE)


class Figures(BaseModel):
    targeted: int = Field(0, description="residents with at least one message")
    reached: int = Field(0, description="residents with at least one message delivered or confirmed")
    sent_to: int = Field(0, description="residents with at least one message accepted by a provider")
    reach_rate: float | None = Field(None, description="reached / targeted")
    sent_rate: float | None = Field(None, description="sent_to / targeted")
    sent: int = Field(0, description="messages accepted by a provider (sent, delivered or confirmed)")
    delivered: int = Field(0, description="messages delivered or confirmed")
    confirmed: int = Field(0, description="messages the resident confirmed (state confirmed)")
    failed: int = 0
    failed_by_reason: dict[str, int] = Field(default_factory=dict)
    fallback: int = Field(0, description="messages handed over to the resident's next channel")
    skipped: int = 0
    pending: int = Field(0, description="messages queued or being sent")
    printouts: int = Field(0, description="notice-board printouts sent")

    def add_messages(self, state: str, n: int) -> None:
        if state in SENT_STATES:
            self.sent += n
        if state in DELIVERED_STATES:
            self.delivered += n
        if state == "confirmed":
            self.confirmed += n
        if state in ("failed", "fallback", "skipped"):
            setattr(self, state, getattr(self, state) + n)
        if state in ("queued", "sending"):
            self.pending += n

    def add_residents(self, targeted: int, reached: int, sent_to: int) -> None:
        self.targeted += targeted
        self.reached += reached
        self.sent_to += sent_to

    def add_failures(self, reason: str, n: int) -> None:
        self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + n

    def add(self, other: Figures) -> None:
        for name in ("targeted", "reached", "sent_to", "sent", "delivered", "confirmed", "failed", "fallback"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("skipped", "pending", "printouts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.failed_by_reason.items():
            self.add_failures(reason, n)

    def finish(self) -> None:
        self.reach_rate = round(self.reached / self.targeted, 4) if self.targeted else None
        self.sent_rate = round(self.sent_to / self.targeted, 4) if self.targeted else None
        self.failed_by_reason = dict(sorted(self.failed_by_reason.items()))


class NoticeReach(Figures):
    notice_id: int
    department: str
    title: str
    severity: Severity
    state: NoticeState
    released_at: datetime | None = Field(description="approved, or sent by emergency override")
    minutes_to_50_percent: float | None = None
    minutes_to_90_percent: float | None = None


class DepartmentReach(Figures):
    department: str
    notices: int = 0


class ChannelReach(Figures):
    channel: str


class TownReach(Figures):
    town: str
    name: str | None


class VillagePrintouts(BaseModel):
    village: str
    name: str | None
    printouts: int


class ReachReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    department: str | None
    total: Figures
    notices: list[NoticeReach]
    departments: list[DepartmentReach]
    channels: list[ChannelReach]
    towns: list[TownReach]
    villages: list[VillagePrintouts] = Field(description="notice-board printouts per village")


class DepartmentAssessment(BaseModel):
    department: str
    name: str
    notices_created: int
    notices_submitted: int = Field(description="sent for approval (or sent by override)")
    notices_issued: int = Field(description="released: approved, or sent by emergency override")
    approvals_due: int = Field(description="submitted notices decided, or past their due time undecided")
    approved_on_time: int = Field(description="of those, decided within [approval] due_minutes")
    on_time_rate: float | None
    overdue_after_the_fact: int = Field(description="sent by override and not yet approved after the fact")
    targeted: int
    reached: int
    reach_rate: float | None
    sent_rate: float | None
    feedback_received: int = Field(0, description="residents' feedback items received in the period")
    feedback_due: int = Field(0, description="of those, answered, or open past their due time")
    feedback_answered_in_time: int = Field(0, description="of those, answered by their due time")
    feedback_in_time_rate: float | None = Field(None, description="feedback_answered_in_time / feedback_due")


class AssessmentReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    departments: list[DepartmentAssessment]
    notes: list[str]


# --- the period ----------------------------------------------------------------------------------------


def period_start(value: date | datetime | None, timezone: str) -> datetime:
    """A date is the start of that day in the service's time zone; none is the start of time."""
    if value is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(), ZoneInfo(timezone)).astimezone(UTC)


def period_end(value: date | datetime | None, timezone: str, now: datetime) -> datetime:
    """A date includes that whole day (the end is the next midnight); a time is exclusive; none is now."""
    if value is None:
        return now
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value + timedelta(days=1), time(), ZoneInfo(timezone)).astimezone(UTC)


def parse_day_or_moment(text: str) -> date | datetime:
    """``YYYY-MM-DD`` or an RFC 3339 time with a zone (what the CLI's --from and --to take). A ValueError says
    what is wrong in the service's words (the caller names the field), never in Python's."""
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text} is not a day of the calendar") from None
    offset = _OFFSET.search(text)
    if offset is not None and (int(offset["hours"]) > 23 or int(offset["minutes"]) > 59):
        raise ValueError(f"the zone offset {offset[1]} is out of range: from -23:59 to +23:59")
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lowercase t and z; Python 3.11 does not
    except ValueError:
        raise ValueError(
            "not a time of the calendar: a day of its month, hours 00-23, minutes and seconds 00-59, "
            "e.g. 2026-11-30T08:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise ValueError("a time needs a zone, e.g. 2026-11-30T08:00:00+08:00")
    return moment


# --- the reach report ----------------------------------------------------------------------------------


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def released_at(row: Row) -> datetime | None:
    """When a notice was released: its override, else its approval; one released without a recorded approval
    time (made approved by the engine itself) by its creation; None while it is not released."""
    if row["state"] in UNRELEASED and not row["overridden_at"]:
        return None
    return _at(row["overridden_at"]) or _at(row["approved_at"]) or _at(row["created_at"])


def _within(moment: datetime | None, from_at: datetime, to_at: datetime) -> bool:
    return moment is not None and from_at <= moment < to_at


async def reach_report(store: Store, from_at: datetime, to_at: datetime, department: str | None) -> ReachReport:
    rows = [
        r for r in await store.report_notices(from_at, to_at, department) if _within(released_at(r), from_at, to_at)
    ]
    ids = [int(r["id"]) for r in rows]
    notices = {int(r["id"]): _notice_reach(r) for r in rows}
    channels: dict[str, ChannelReach] = {}
    towns: dict[str, TownReach] = {}
    for row in await store.report_rows("report_delivery_states", ids):
        notices[row["notice_id"]].add_messages(row["state"], row["n"])
        _channel(channels, row["channel"]).add_messages(row["state"], row["n"])
        _town(towns, row["town"]).add_messages(row["state"], row["n"])
    for row in await store.report_rows("report_failure_reasons", ids):
        notices[row["notice_id"]].add_failures(row["reason"], row["n"])
        _channel(channels, row["channel"]).add_failures(row["reason"], row["n"])
        _town(towns, row["town"]).add_failures(row["reason"], row["n"])
    for row in await store.report_rows("report_residents_by_town", ids):
        notices[row["notice_id"]].add_residents(row["targeted"], row["reached"], row["sent_to"])
        _town(towns, row["town"]).add_residents(row["targeted"], row["reached"], row["sent_to"])
    for row in await store.report_rows("report_residents_by_channel", ids):
        _channel(channels, row["channel"]).add_residents(row["targeted"], row["reached"], row["sent_to"])
    villages: dict[str, int] = defaultdict(int)
    for row in await store.report_rows("report_printouts", ids):
        notices[row["notice_id"]].printouts += row["n"]
        villages[row["area_code"]] += row["n"]
        _town(towns, row["area_code"][:9]).printouts += row["n"]
    _times_to_reach(notices, await store.report_rows("report_first_deliveries", ids))
    names = await store.area_names([*towns, *villages])
    for town in towns.values():
        town.name = names.get(town.town)
    return ReachReport.model_validate(
        {
            "from": from_at,
            "to": to_at,
            "department": department,
            "total": _finished(_sum(Figures(), notices.values())),
            "notices": _finished(notices.values()),
            "departments": _finished(_by_department(notices.values())),
            "channels": _finished(channels[k] for k in sorted(channels)),
            "towns": _finished(towns[k] for k in sorted(towns)),
            "villages": [
                VillagePrintouts(village=k, name=names.get(k), printouts=v) for k, v in sorted(villages.items())
            ],
        }
    )


def _notice_reach(row: Row) -> NoticeReach:
    released = released_at(row)
    return NoticeReach(
        notice_id=row["id"],
        department=row["department"],
        title=row["title"],
        severity=row["severity"],
        state=row["state"],
        released_at=released,
    )


def _channel(channels: dict[str, ChannelReach], kind: str) -> ChannelReach:
    return channels.setdefault(kind, ChannelReach(channel=kind))


def _town(towns: dict[str, TownReach], code: str) -> TownReach:
    return towns.setdefault(code, TownReach(town=code, name=None))


def _sum(into: Figures, parts: Iterable[Figures]) -> Figures:
    for part in parts:
        into.add(part)
    return into


def _by_department(notices: Iterable[NoticeReach]) -> list[DepartmentReach]:
    departments: dict[str, DepartmentReach] = {}
    for notice in notices:
        row = departments.setdefault(notice.department, DepartmentReach(department=notice.department))
        row.add(notice)
        row.notices += 1
    return [departments[k] for k in sorted(departments)]


def _finished(items: Any) -> Any:
    if isinstance(items, Figures):
        items.finish()
        return items
    done = list(items)
    for item in done:
        item.finish()
    return done


def _times_to_reach(notices: dict[int, NoticeReach], first_deliveries: list[Row]) -> None:
    times: dict[int, list[datetime]] = defaultdict(list)
    for row in first_deliveries:
        times[row["notice_id"]].append(datetime.fromisoformat(row["first_at"]))
    for notice_id, notice in notices.items():
        if notice.released_at is None or not notice.targeted:
            continue
        reached = sorted(times.get(notice_id, []))
        for share, field in ((0.5, "minutes_to_50_percent"), (0.9, "minutes_to_90_percent")):
            needed = math.ceil(share * notice.targeted)
            if len(reached) >= needed:
                minutes = (reached[needed - 1] - notice.released_at).total_seconds() / 60
                setattr(notice, field, round(max(minutes, 0.0), 2))


# --- the department assessment ----------------------------------------------------------------------------


async def assessment_report(
    store: Store, rules: ApprovalConfig, from_at: datetime, to_at: datetime, department: str | None, now: datetime
) -> AssessmentReport:
    rows = await store.report_notices(from_at, to_at, department)
    reach = await reach_report(store, from_at, to_at, department)
    feedback = await store.feedback_report_rows(from_at, to_at, department)
    reach_of = {row.department: row for row in reach.departments}
    rejected_at = {
        int(r["notice_id"]): datetime.fromisoformat(r["decided_at"])
        for r in await store.report_rows("report_last_decisions", [int(r["id"]) for r in rows])
    }
    names = await store.department_names()
    codes = [department] if department is not None else sorted(names)
    result = []
    for code in codes:
        own = [row for row in rows if row["department"] == code]
        submitted = [r for r in own if _within(_at(r["overridden_at"] or r["submitted_at"]), from_at, to_at)]
        released = [r for r in own if _within(released_at(r), from_at, to_at)]
        due, on_time = _approval_timeliness(submitted, rules, rejected_at, now)
        figures = reach_of.get(code) or DepartmentReach(department=code)
        received, answered_due, answered_in_time = _feedback_timeliness(
            [r for r in feedback if r["department"] == code], now
        )
        result.append(
            DepartmentAssessment(
                department=code,
                name=names.get(code, code),
                notices_created=sum(1 for r in own if _within(_at(r["created_at"]), from_at, to_at)),
                notices_submitted=len(submitted),
                notices_issued=len(released),
                approvals_due=due,
                approved_on_time=on_time,
                on_time_rate=round(on_time / due, 4) if due else None,
                overdue_after_the_fact=sum(1 for r in released if r["overridden_at"] and not r["approved_at"]),
                targeted=figures.targeted,
                reached=figures.reached,
                reach_rate=figures.reach_rate,
                sent_rate=figures.sent_rate,
                feedback_received=received,
                feedback_due=answered_due,
                feedback_answered_in_time=answered_in_time,
                feedback_in_time_rate=round(answered_in_time / answered_due, 4) if answered_due else None,
            )
        )
    return AssessmentReport.model_validate({"from": from_at, "to": to_at, "departments": result, "notes": []})


def _feedback_timeliness(rows: list[Row], now: datetime) -> tuple[int, int, int]:
    """(received, due, answered in time) of a department's feedback items received in the period: an item is
    due once answered or once its due time has passed unanswered; in time when answered by its due time."""
    due = in_time = 0
    for row in rows:
        deadline = datetime.fromisoformat(row["due_at"])
        answered = datetime.fromisoformat(row["answered_at"]) if row["answered_at"] else None
        if answered is None and now <= deadline:
            continue
        due += 1
        in_time += answered is not None and answered <= deadline
    return len(rows), due, in_time


def _approval_timeliness(
    rows: list[Row], rules: ApprovalConfig, rejected_at: dict[int, datetime], now: datetime
) -> tuple[int, int]:
    """(approvals due, decided on time): a notice is due once decided or once its due time has passed."""
    due = on_time = 0
    for row in rows:
        started = row["overridden_at"] or row["submitted_at"]
        if started is None:
            continue
        deadline = datetime.fromisoformat(started) + timedelta(minutes=rules.due(Severity(row["severity"])))
        decided = datetime.fromisoformat(row["approved_at"]) if row["approved_at"] else rejected_at.get(row["id"])
        if decided is None and now <= deadline:
            continue
        due += 1
        on_time += decided is not None and decided <= deadline
    return due, on_time
