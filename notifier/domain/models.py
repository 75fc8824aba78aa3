"""Pydantic models: what the API accepts and returns, and what the store hands back.

Input models forbid unknown fields, so a typo is an error and never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from notifier.domain.contacts import area_level, normalise_email, normalise_phone
from notifier.domain.disclosure import DisclosureDomain
from notifier.domain.enums import ChannelKind, ChannelMode, NoticeState, Role, Severity
from notifier.domain.errors import Forbidden
from notifier.domain.text import MultiLineText, SingleLineText, clean_data

CODE_PATTERN = r"^[a-z][a-z0-9-]{1,47}$"
Code = Annotated[str, Field(pattern=CODE_PATTERN, description="lower-case slug, e.g. air-quality")]


def _check_area(code: str) -> str:
    area_level(code)
    return code


AREA_CODE_PATTERN = r"^[0-9]{6}([0-9]{3}){0,2}$"  # county 6 digits, town 9, village 12 (checked by area_level)
AreaCode = Annotated[
    str,
    AfterValidator(_check_area),
    Field(examples=["370725001"], json_schema_extra={"pattern": AREA_CODE_PATTERN}),
]
Phone = Annotated[str, AfterValidator(normalise_phone), Field(examples=["+8613800138000"])]
Email = Annotated[str, AfterValidator(normalise_email), Field(examples=["li.ming@example.com"])]
Name = Annotated[SingleLineText, Field(min_length=1, max_length=100)]
MAX_ID = 2**63 - 1  # the largest integer the store keeps
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="a positive id")]
MAX_DATA_DEPTH = 32


def _check_moment(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside the calendar once converted to UTC") from None


Moment = Annotated[AwareDatetime, AfterValidator(_check_moment), Field(examples=["2026-07-01T08:00:00+08:00"])]
NoticeData = Annotated[
    dict[str, Any],
    AfterValidator(lambda value: clean_data(value, MAX_DATA_DEPTH)),
    Field(description=f"template data: JSON nested at most {MAX_DATA_DEPTH} levels"),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- areas, topics, groups, departments -------------------------------------------------------


class AreaIn(Strict):
    code: AreaCode
    name: Name


class Area(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None


class AreaNode(Area):
    children: list[AreaNode] = []


class TopicIn(Strict):
    code: Code
    name: Name
    description: MultiLineText = Field("", max_length=1000)


class Topic(BaseModel):
    id: int
    code: str
    name: str
    description: str


class GroupIn(TopicIn):
    pass


class Group(Topic):
    pass


class Department(BaseModel):
    code: str
    name: str
    topics: list[str] = Field(description="topics it issues notices on")
    groups: list[str] = Field(default_factory=list, description="resident groups it works with")


# --- subscribers -------------------------------------------------------------------------------

_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class QuietHours(Strict):
    """Local hours in which non-urgent notices wait; may wrap midnight (22:00-07:00)."""

    start: str = Field(examples=["22:00"])
    end: str = Field(examples=["07:00"])

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.fullmatch(value):
            raise ValueError("use 24-hour HH:MM")
        return value

    def contains(self, moment: time) -> bool:
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start <= end:
            return start <= moment < end
        return moment >= start or moment < end


PersonalChannel = Literal["sms", "wechat", "wecom", "email"]


class SubscriberFields(Strict):
    name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    wechat_openid: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{6,64}$")] | None = None
    wecom_userid: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")] | None = None
    area_code: AreaCode | None = None
    groups: list[Code] | None = None
    topics: list[Code] | None = None
    channels: list[PersonalChannel] | None = Field(
        None, description="channel preference order; the first one with an address is tried first"
    )
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] | None = None
    quiet_hours: QuietHours | None = None

    @field_validator("channels", "groups", "topics")
    @classmethod
    def _no_duplicates(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("list has duplicates")
        return value


class SubscriberIn(SubscriberFields):
    name: Name
    area_code: AreaCode
    groups: list[Code] = []
    topics: list[Code] = []
    channels: list[PersonalChannel] = ["wechat", "sms", "wecom", "email"]
    language: str = "zh"
    consent_source: SingleLineText = Field(
        "api", max_length=200, description="where consent was given (paper form, web page, import file)"
    )
    external_id: SingleLineText | None = Field(None, max_length=64, description="id in the department's own roster")


class SubscriberPatch(SubscriberFields):
    # absent leaves these as they are; null is refused (a resident always has them), so the schema has no null
    name: Name | SkipJsonSchema[None] = None
    area_code: AreaCode | SkipJsonSchema[None] = None
    channels: list[PersonalChannel] | SkipJsonSchema[None] = Field(
        None, description="channel preference order; the first one with an address is tried first"
    )
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] | SkipJsonSchema[None] = None
    consent_withdrawn: bool | None = Field(None, description="true withdraws consent: nothing is sent")
    opt_out_topics: list[Code] | None = None
    opt_out_channels: list[PersonalChannel] | None = None


class Consent(BaseModel):
    source: str
    at: datetime
    withdrawn_at: datetime | None = None


class Subscriber(BaseModel):
    id: int
    external_id: str | None
    name: str
    phone: str | None
    email: str | None
    wechat_openid: str | None
    wecom_userid: str | None
    area_code: str
    groups: list[str]
    topics: list[str]
    channels: list[str]
    language: str
    quiet_hours: QuietHours | None
    consent: Consent
    opt_out_topics: list[str]
    opt_out_channels: list[str]
    created_at: datetime
    updated_at: datetime


# --- notices -----------------------------------------------------------------------------------


class Target(Strict):
    """Who a notice concerns.

    The rule: residents in ``areas`` (a town covers its villages; empty means the whole county)
    AND in any of ``groups`` OR subscribed to any of ``topics`` (with ``combine="all"``: in one of
    the groups AND subscribed to one of the topics; with neither given, everyone in the areas),
    plus every resident listed in ``subscribers``. ``referenced`` (with the notice's ``references``)
    instead goes to exactly the residents the earlier notice reached: an update or an all-clear.
    """

    areas: list[AreaCode] = []
    groups: list[Code] = []
    topics: list[Code] = []
    subscribers: list[Id] = Field([], max_length=10000)
    combine: Literal["any", "all"] = "any"
    referenced: bool = Field(
        False, description="with the notice's `references`: exactly the residents the earlier notice reached"
    )
    roster: Id | None = Field(
        None,
        description="a roster of the department: only its matched residents (and its direct phones), each with "
        "their own row for `{{ row.<column> }}`; with areas or groups, those of them the rule also matches",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Target:
        if not (self.areas or self.groups or self.topics or self.subscribers or self.referenced or self.roster):
            raise ValueError("target needs at least one of areas, groups, topics, subscribers, referenced, roster")
        if self.roster is not None and (self.subscribers or self.referenced):
            raise ValueError("target.roster goes with areas and groups only, not with subscribers or referenced")
        return self


RosterColumn = Annotated[SingleLineText, Field(min_length=1, max_length=64)]


MAX_PUBLICITY_DAYS = 60  # statutory periods (公示期) run 5 to 30 days


class PublicityIn(Strict):
    """A publicity list (公示): columns of a roster shown, masked, on village boards and the public page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, serialize_by_alias=True)

    roster: Id = Field(description="a roster of the department")
    columns: list[RosterColumn] = Field(
        min_length=1,
        max_length=20,
        description="roster columns to publish, and `name` / `area` for the matched resident's name and village",
    )
    from_date: date = Field(alias="from", description="first day of the publicity period")
    until: date = Field(description="last day of the publicity period; the public page answers 410 after it")
    complaint_phone: SingleLineText = Field(
        min_length=3, max_length=40, pattern=r"^[0-9+() -]+$", description="printed on every page"
    )
    masks: dict[RosterColumn, Literal["full"]] = Field(
        default_factory=dict,
        description="stricter masking per column: `full` hides every character (names, identity and phone "
        "numbers are always masked; nothing can be shown more fully)",
    )
    paper: Literal["A4", "A3"] = "A4"

    @model_validator(mode="after")
    def _period(self) -> PublicityIn:
        if self.until < self.from_date:
            raise ValueError("until is before from")
        if (self.until - self.from_date).days + 1 > MAX_PUBLICITY_DAYS:
            # the list shows residents' (masked) names and amounts in public, and its roster is kept until it ends
            raise ValueError(f"a publicity period is at most {MAX_PUBLICITY_DAYS} days, first and last included")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("columns has duplicates")
        return self


class Confirmation(Strict):
    """A notice that asks its residents to confirm they got it (docs/feedback.md)."""

    remind_after_minutes: int | None = Field(
        None,
        ge=1,
        le=10080,
        description="minutes after a resident's message was sent with no confirmation before one reminder goes "
        "out on their next channel; null: no reminder",
    )


class NoticeIn(Strict):
    topic: Code
    title: SingleLineText = Field(min_length=1, max_length=200)
    body: MultiLineText | None = Field(None, min_length=1, max_length=10000)
    template: Code | None = None
    data: NoticeData = {}
    severity: Severity = Severity.INFO
    target: Target
    channels: list[ChannelKind] = Field(
        default_factory=lambda: [ChannelKind.WECHAT, ChannelKind.SMS, ChannelKind.WECOM, ChannelKind.EMAIL],
        min_length=1,
    )
    channel_mode: ChannelMode = ChannelMode.FIRST_AVAILABLE
    send_at: Moment | None = None
    expires_at: Moment | None = None
    references: Id | None = Field(None, description="id of an earlier notice this one updates or lifts")
    public: bool = Field(
        False,
        description="shown once approved on the public notices page /public/notices, its Atom feed and the kiosks "
        "(the channel kind feed means the same)",
    )
    domain: DisclosureDomain | None = Field(
        None, description="column of the public notices page; by default the one of the notice's topic"
    )
    interpretation: MultiLineText | None = Field(
        None, min_length=1, max_length=10000, description="政策解读: a plain-language reading shown beside the text"
    )
    publicity: PublicityIn | None = Field(None, description="a publicity list (公示) the notice publishes")
    confirmation: Confirmation | None = Field(
        None,
        description="ask residents to confirm: SMS end with the alias's reply wording (回复1确认收到), other "
        "channels carry a signed link",
    )

    @model_validator(mode="after")
    def _content(self) -> NoticeIn:
        if (self.body is None) == (self.template is None):
            raise ValueError("give exactly one of body or template")
        if self.send_at and self.expires_at and self.expires_at <= self.send_at:
            raise ValueError("expires_at must be after send_at")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels has duplicates")
        if self.target.referenced and self.references is None:
            raise ValueError("target.referenced needs references: the id of the earlier notice")
        return self


class Decision(Strict):
    reason: MultiLineText | None = Field(None, max_length=1000)


class DecisionIn(Strict):
    """What an approver sends with an approval (optional) or a rejection (a comment is required)."""

    comment: MultiLineText | None = Field(
        None, max_length=2000, description="kept with the decision and shown in the notice's decisions"
    )
    reason: MultiLineText | None = Field(
        None,
        max_length=1000,
        description="the older name of comment, still read",
        json_schema_extra={"deprecated": True},
    )

    @property
    def text(self) -> str | None:
        """The comment (or, from older clients, the reason); None when blank."""
        return self.comment or self.reason or None


class NoticeDecision(BaseModel):
    """An approval, a rejection or an emergency override of a notice: who decided, in which role and
    department, when, and why."""

    decision: Literal["approved", "rejected", "overridden"]
    actor: str = Field(description="who decided, e.g. apikey:12")
    role: Role
    department: str
    comment: str | None
    decided_at: datetime
    after_the_fact: bool = Field(False, description="an approval given after an override had sent the alert")


class Notice(BaseModel):
    id: int
    department: str
    topic: str
    title: str
    body: str | None
    template: str | None
    template_version: int | None = Field(
        None,
        description="the version of the template (of `notice` for a notice with a body) checked at creation; "
        "the notice renders with it even after the template is saved again",
    )
    data: dict[str, Any]
    severity: Severity
    target: Target
    channels: list[ChannelKind]
    channel_mode: ChannelMode
    send_at: datetime | None
    expires_at: datetime | None
    references: int | None
    confirmation: Confirmation | None = None
    answers_feedback: int | None = Field(None, description="set on the reply to a feedback item: its id")
    state: NoticeState
    created_by: int | None
    approved_by: int | None
    reason: str | None = Field(description="what the approver, the rejecter or the canceller wrote")
    failure_reason: str | None = Field(
        None,
        description="why the service stopped the notice by itself (state cancelled): its template no longer "
        "rendered with its data when it was to be sent; null otherwise",
    )
    created_at: datetime
    updated_at: datetime
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="deliveries per channel and delivery state"
    )
    reach: float | None = Field(None, description="share of targeted residents sent or delivered a message")
    areas_reached: int | None = Field(
        None,
        description="areas (villages, towns) whose group bot or notice-board printout was sent or delivered; "
        "counted apart from residents (counts show kinds bot and bulletin per state); null without area deliveries",
    )
    decisions: list[NoticeDecision] = Field(
        default_factory=list,
        description="approvals, rejections and overrides with their comments, oldest first (left out of lists)",
    )
    approvals_required: int | None = Field(
        None, description="distinct approvers the notice needs (the config's rule, fixed at submission)"
    )
    approvals: int = Field(0, description="distinct approvers who have approved it so far")
    submitted_at: datetime | None = None
    approved_at: datetime | None = Field(None, description="when its last required approval came")
    overridden_by: str | None = Field(None, description="who sent it at once by the emergency override")
    overridden_at: datetime | None = None
    approval_overdue: bool = Field(
        False, description="sent by an emergency override and not yet approved after the fact by its approvers"
    )
    public: bool = Field(False, description="shown on the public pages, feeds and kiosks once approved")
    domain: DisclosureDomain | None = Field(None, description="column of the public notices page")
    interpretation: str | None = Field(None, description="政策解读 shown beside the text on the public page")
    cap_identifier: str | None = Field(
        None, description="sender,identifier,sent of the CAP alert this notice came from; null otherwise"
    )
    publicity: PublicityIn | None = Field(None, description="the publicity list, when the notice has one")


class Delivery(BaseModel):
    id: int
    notice_id: int
    subscriber_id: int
    channel: str
    alias: str | None
    state: str
    attempts: int
    provider_message_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class ApiKeyInfo(BaseModel):
    id: int
    name: str
    department: str
    role: Role


class ApiKeyRecord(BaseModel):
    """A key as listed: never its secret nor the secret's hash."""

    id: int
    prefix: str = Field(description="the part after ntf_, shown in lists and used to revoke the key")
    name: str
    department: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = Field(description="last request made with the key, to the minute")
    revoked_at: datetime | None


class AuditEntry(BaseModel):
    """One entry of the tamper-evident audit log (docs/audit.md); personal fields in ``detail`` are masked."""

    id: int
    at: str = Field(description="when, as stored (ISO 8601 UTC with microseconds): the exact text the hash covers")
    actor: str = Field(description="who: apikey:<id>, cli, engine, or the resident page or hook that acted")
    action: str = Field(description="what happened, e.g. notice.approved, subscriber.update, apikey.revoke")
    object_type: str
    object_id: str | None
    detail: dict[str, Any]
    prev_hash: str = Field(description="hash of the entry before (64 zeros for the first)")
    hash: str = Field(description="SHA-256 of this entry's canonical form, lower-case hex")


@dataclass(frozen=True)
class PersonalDataScope:
    """The residents a department's key may read, and which of their group memberships.

    A resident is in scope when subscribed to one of the department's topics or in one of the groups it works
    with; of the memberships, the key sees those groups only. Admin keys have no scope: they read everyone.
    """

    department: str
    topics: frozenset[str]
    groups: frozenset[str]

    @classmethod
    def of(cls, department: Department) -> PersonalDataScope:
        return cls(department.code, frozenset(department.topics), frozenset(department.groups))

    def shows(self, subscriber: Subscriber) -> bool:
        return bool(self.topics.intersection(subscriber.topics) or self.groups.intersection(subscriber.groups))

    def redact(self, subscriber: Subscriber) -> Subscriber:
        return subscriber.model_copy(update={"groups": [g for g in subscriber.groups if g in self.groups]})

    def topics_refused(self, topics: Iterable[str]) -> str | None:
        """Why the department may not name ``topics`` (those it does not issue on); None when it may."""
        outside = [topic for topic in topics if topic not in self.topics]
        return f"department {self.department} does not issue on topic {', '.join(outside)}" if outside else None

    def groups_refused(self, groups: Iterable[str]) -> str | None:
        """Why the department may not name ``groups`` (those it does not work with); None when it may."""
        outside = [group for group in groups if group not in self.groups]
        return f"department {self.department} does not work with group {', '.join(outside)}" if outside else None

    def check_topics(self, topics: Iterable[str], loc: str) -> None:
        """Forbidden naming ``loc`` when a topic lies outside the topics the department issues on."""
        refusal = self.topics_refused(topics)
        if refusal:
            raise Forbidden(f"{loc}: {refusal}; its topics: {', '.join(sorted(self.topics)) or 'none'}")

    def check_groups(self, groups: Iterable[str], loc: str) -> None:
        """Forbidden naming ``loc`` when a group lies outside the department's groups."""
        refusal = self.groups_refused(groups)
        if refusal:
            raise Forbidden(f"{loc}: {refusal}; its groups: {', '.join(sorted(self.groups)) or 'none'}")


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None
