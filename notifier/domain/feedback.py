"""Residents' feedback (意见建议、投诉举报) and confirmations: what the API accepts and returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from notifier.domain.enums import FeedbackCategory, FeedbackState
from notifier.domain.models import Strict
from notifier.domain.text import MultiLineText, SingleLineText


class FeedbackItem(BaseModel):
    """One reply of a resident: an SMS, a WeChat message or the public form, linked to the notice it answers."""

    id: int
    notice_id: int | None = Field(description="the notice it answers; null when no notice could be matched")
    department: str | None = Field(description="the notice's department, which answers it")
    subscriber_id: int | None = Field(description="the resident, when known")
    channel: str = Field(description="where it came from: sms, wechat or form")
    contact: str | None = Field(description="phone or WeChat openid a reply goes back to; null when none")
    contact_name: str | None = Field(description="the name given on the public form")
    category: FeedbackCategory
    text: str = Field(description="the resident's words; 'erased after N days' once the retention erased them")
    state: FeedbackState
    overdue: bool = Field(description="open and past its due time")
    assigned_to: str | None
    received_at: datetime
    due_at: datetime = Field(description="received_at plus the configured time limit ([feedback] answer_within_hours)")
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None
    reply_notice: int | None = Field(description="the notice that carried the answer to the resident; null when none")
    outcome: str | None
    closed_at: datetime | None
    closed_by: str | None
    erased_at: datetime | None = Field(
        description="when housekeeping erased the text, contact, resident and answer ([feedback] keep_days after "
        "it was closed, or after it came for an item never closed); null while kept"
    )
    erased_after_days: int | None = Field(description="the retention in days it was erased under; null while kept")


class FeedbackQuery(Strict):
    notice: int | None = Field(None, ge=1, le=2**63 - 1, description="only items answering this notice")
    state: FeedbackState | None = None
    overdue: bool | None = Field(None, description="true: open items past their due time; false: the others")
    cursor: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500, description="items per page")


class FeedbackReplyIn(Strict):
    text: MultiLineText = Field(min_length=1, max_length=500, description="the answer sent to the resident")


class FeedbackCloseIn(Strict):
    outcome: MultiLineText = Field(min_length=1, max_length=1000, description="how the item was settled")


class FeedbackAssignIn(Strict):
    assigned_to: SingleLineText = Field(min_length=1, max_length=100, description="who in the department handles it")


class FeedbackFigures(BaseModel):
    department: str = Field(description="department code; empty for items that matched no notice")
    received: int
    answered: int
    answered_in_time: int = Field(description="answered by their due time")
    median_minutes_to_answer: float | None = Field(description="null when none was answered")


class FeedbackReport(BaseModel):
    start: datetime = Field(description="the period's start (from), included")
    end: datetime = Field(description="the period's end (to), excluded")
    items: list[FeedbackFigures] = Field(description="one row per department with feedback received in the period")


class FollowUpResident(BaseModel):
    """A resident who has not confirmed a notice: the village committee visits or calls."""

    subscriber_id: int
    name: str
    phone: str | None
    area_code: str
    village: str
    village_name: str | None
    town_name: str | None
    reminded_at: datetime | None = Field(description="when the one reminder went out; null when none did")
    reminder_channel: str | None = Field(description="the channel of the reminder; null when none went out")
    deliveries: list[str] = Field(description="channel:state of each of the resident's deliveries of the notice")
