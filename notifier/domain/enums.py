"""Enumerations shared by the store, the engine and the API."""

from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"  # ordinary public information; waits for quiet hours to end
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"  # jumps the queue, ignores quiet hours
    EXTREME = "extreme"  # jumps the queue, ignores quiet hours

    @property
    def is_urgent(self) -> bool:
        return self in (Severity.SEVERE, Severity.EXTREME)

    @property
    def priority(self) -> int:
        """Queue priority: higher is claimed first."""
        return {"info": 0, "minor": 1, "moderate": 2, "severe": 8, "extreme": 9}[self.value]


class NoticeState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"  # approved, not yet fanned out
    SCHEDULED = "scheduled"  # fanned out or waiting for send_at
    SENDING = "sending"
    DONE = "done"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_NOTICE_STATES


TERMINAL_NOTICE_STATES = frozenset({NoticeState.DONE, NoticeState.REJECTED, NoticeState.CANCELLED, NoticeState.EXPIRED})


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"  # confirmed by a receipt
    CONFIRMED = "confirmed"  # the resident confirmed (reply word or signed link), for notices that ask
    FAILED = "failed"
    SKIPPED = "skipped"  # no address, opted out, expired or cancelled before sending
    FALLBACK = "fallback"  # handed over to the resident's next channel


class Role(StrEnum):
    ISSUER = "issuer"  # drafts, submits and cancels notices; manages residents
    APPROVER = "approver"  # approves or rejects notices of its department
    ADMIN = "admin"  # everything in its department, plus areas, topics and groups
    VIEWER = "viewer"  # read only


class ChannelKind(StrEnum):
    SMS = "sms"
    WECHAT = "wechat"
    WECOM = "wecom"
    EMAIL = "email"
    BOT = "bot"  # group bots of an area
    BULLETIN = "bulletin"  # printouts for an area's notice board
    FEED = "feed"  # public feeds and kiosk

    @property
    def is_personal(self) -> bool:
        """Personal channels reach one resident at an address of theirs."""
        return self in PERSONAL_CHANNELS


PERSONAL_CHANNELS = frozenset({ChannelKind.SMS, ChannelKind.WECHAT, ChannelKind.WECOM, ChannelKind.EMAIL})
# area channels reach an area (a group chat, a notice board): their deliveries carry an area code, no resident
AREA_CHANNELS = frozenset({ChannelKind.BOT, ChannelKind.BULLETIN})


class ChannelMode(StrEnum):
    FIRST_AVAILABLE = "first-available"  # one channel per resident, next one on failure
    ALL = "all"  # every channel the resident has an address for (red alerts)


class AreaLevel(StrEnum):
    COUNTY = "county"  # 6 digits
    TOWN = "town"  # 9 digits
    VILLAGE = "village"  # 12 digits


class FeedbackState(StrEnum):
    OPEN = "open"  # received, not answered yet (overdue once past its due time)
    ANSWERED = "answered"  # a reply went back to the resident (or was recorded when no channel reaches them)
    CLOSED = "closed"  # closed with an outcome


class FeedbackCategory(StrEnum):
    OPINION = "opinion"  # 意见建议
    COMPLAINT = "complaint"  # 投诉举报
