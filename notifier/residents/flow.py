"""Residents' self-service, without the web: ask for a code or link, check it, subscribe, open and change
one's own settings, leave. The pages (``notifier.web.subscribe``, ``notifier.web.me``) only read forms and
render; every rule is here.

    request_code     subscribe or /me, by SMS (a 6-digit code) or e-mail (a signed link): limits checked and
                     the request counted in one transaction, the message queued for the engine
                     (``direct_messages``: sent before any notice, with failover and rate limits)
    check_code       the code a resident typed: right, wrong (attempts left), expired, spent
    check_link       the e-mail link's token: its request, when it is still pending
    subscribe        create the resident, or add the topics (and the channel) to the one with that address
    me_link / read_me_token   the signed, expiring link to /me, and reading it back
    update_settings  topics, channels and their order, quiet hours, language
    leave            erase the resident (anonymous delivery counts stay), audited

Codes are kept only as HMAC-SHA256 under the signing secret, bound to the address; a link's nonce likewise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from notifier.domain.contacts import normalise_email, normalise_phone
from notifier.domain.models import QuietHours, Subscriber, SubscriberIn, SubscriberPatch
from notifier.signing import ExpiredToken, TokenError, sign, verify
from notifier.store import Store
from notifier.store.database import Row
from notifier.store.direct_messages import DirectMessage
from notifier.store.subscription_requests import NewRequest, RequestCounts

CODE_TTL = 600.0  # a code's validity, seconds
LINK_TTL = 86400.0  # an e-mailed confirmation link's
ME_TTL = 3600.0  # a /me link's
REQUEST_TTL = 86400.0  # the signed request id's; the code's own expiry is in the table
MAX_ATTEMPTS = 5
PHONE_PER_MINUTE, PHONE_PER_DAY, IP_PER_HOUR = 1, 5, 20
ACTOR_SUBSCRIBE, ACTOR_ME = "web:subscribe", "web:me"
REQUEST_PURPOSE, LINK_PURPOSE, ME_PURPOSE = "subreq", "sublink", "me"
LANGUAGES = ("zh", "en")
SMS_CODE_TEXT = {
    "subscribe": "您的订阅验证码为{code}，10分钟内有效。如非本人操作请忽略。",
    "me": "您的通知设置验证码为{code}，10分钟内有效。如非本人操作请忽略。",
}
MAIL_SUBJECT = {
    "subscribe": "请确认订阅政府公益通知 / Confirm your subscription",
    "me": "您的通知设置链接 / Your settings link",
}
MAIL_TEXT = {
    "subscribe": "请打开下面的链接确认订阅（24小时内有效）：\n{url}\n\nOpen this link within 24 hours to confirm "
    "your subscription to public notices:\n{url}\n\n如非本人操作请忽略。 If you did not ask, ignore this message.\n",
    "me": "请打开下面的链接管理您的通知设置（1小时内有效）：\n{url}\n\nOpen this link within an hour to manage "
    "your notice settings:\n{url}\n\n如非本人操作请忽略。 If you did not ask, ignore this message.\n",
}


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


@dataclass(frozen=True)
class Outside:
    """What the flow needs from the process: the store, the secret, the clock, the engine's aliases."""

    store: Store
    secret: SecretStr
    public_url: str
    now: float
    first_alias: Callable[[str], str | None]  # channel kind -> the alias a message is queued on, or None
    wake: Callable[[], None] = lambda: None  # tell an engine in this process that a message is due


# --- addresses -----------------------------------------------------------------------------------------------------


def address_of(channel: Channel, raw: str) -> str:
    """E.164 phone or lower-case e-mail address; ValueError when it is neither."""
    if channel is Channel.SMS:
        return normalise_phone(raw)
    if len(raw) > 254:
        raise ValueError("the address is too long")
    return normalise_email(raw).lower()


def mailbox_of(address: str) -> str:
    """The address the limits count ``address`` under: an e-mail address without its ``+tag`` (``li+1@x`` and
    ``li+2@x`` reach the one mailbox ``li@x`` at most providers); a phone number as it is."""
    local, at, domain = address.partition("@")
    base = local.partition("+")[0]
    return f"{base}@{domain}" if at and base else address


def code_hash(secret: SecretStr, address: str, code: str) -> str:
    """What the table keeps instead of the code: HMAC-SHA256 keyed with the signing secret, bound to the address."""
    message = f"subscribe-code:{address}:{code}".encode()
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def refusal(counts: RequestCounts) -> tuple[str, int] | None:
    """(which limit, seconds to wait) when a limit is reached."""
    if counts.phone_minute >= PHONE_PER_MINUTE:
        return "minute", 60
    if counts.phone_day >= PHONE_PER_DAY:
        return "day", 86400
    if counts.ip_hour >= IP_PER_HOUR:
        return "network", 3600
    return None


# --- asking for a code or a link ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    purpose: str  # "subscribe" or "me"
    channel: Channel
    address: str  # normalised (address_of)
    client_ip: str
    name: str = ""
    area_code: str | None = None
    topics: Sequence[str] = ()
    language: str = "zh"


@dataclass(frozen=True)
class Asked:
    """The request is stored and its message queued (or, for /me to an unknown address, nothing is sent)."""

    request_id: int
    request_token: str  # signed request id, for the code page
    sent: bool


@dataclass(frozen=True)
class Limited:
    limit: str  # minute, day, network
    wait: int


@dataclass(frozen=True)
class NoChannel:
    channel: Channel


async def request_code(out: Outside, ask: Ask) -> Asked | Limited | NoChannel:
    alias = out.first_alias(ask.channel.value)
    if alias is None:
        return NoChannel(ask.channel)
    store = out.store
    secret_part = f"{secrets.randbelow(1_000_000):06d}" if ask.channel is Channel.SMS else secrets.token_urlsafe(16)
    subscriber_id = None
    if ask.purpose == "me":
        subscriber_id = await (
            store.find_subscriber_by_phone(ask.address) if ask.channel is Channel.SMS
            else store.find_subscriber_by_email(ask.address)
        )  # fmt: skip
    ttl = CODE_TTL if ask.channel is Channel.SMS else (LINK_TTL if ask.purpose == "subscribe" else ME_TTL)
    new = NewRequest(
        ask.address, ask.name, ask.area_code, list(ask.topics), ask.client_ip,
        code_hash(out.secret, ask.address, secret_part), MAX_ATTEMPTS, out.now + ttl,
        purpose=ask.purpose, channel=ask.channel.value, subscriber_id=subscriber_id,
    )  # fmt: skip
    async with store.db.transaction():  # limits checked, the request counted and its message queued atomically
        mailbox = mailbox_of(ask.address)
        await store.lock_code_requests(mailbox, ask.client_ip)  # requests at once: one after the other
        await store.purge_subscription_requests(out.now)
        limited = refusal(await store.count_subscription_requests(mailbox, ask.client_ip, out.now))
        if limited is not None:
            return Limited(*limited)
        request_id = await store.insert_subscription_request(new, out.now)
        sends = ask.purpose == "subscribe" or subscriber_id is not None
        if sends:
            await store.queue_direct_message(
                _message(out, ask, alias, request_id, secret_part, subscriber_id, ttl), out.now
            )
    if sends:
        out.wake()
    token = sign({"p": REQUEST_PURPOSE, "r": request_id}, out.secret, REQUEST_TTL, now=out.now)
    return Asked(request_id, token, sends)


def _message(
    out: Outside, ask: Ask, alias: str, request_id: int, secret_part: str, subscriber_id: int | None, ttl: float
) -> DirectMessage:
    deadline = out.now + ttl
    if ask.channel is Channel.SMS:
        text = SMS_CODE_TEXT[ask.purpose].format(code=secret_part)
        return DirectMessage(f"{ask.purpose}-code", "sms", alias, ask.address, text, deadline, request_id)
    if ask.purpose == "me":
        assert subscriber_id is not None
        url = me_url(out, subscriber_id)
    else:
        token = sign({"p": LINK_PURPOSE, "r": request_id, "n": secret_part}, out.secret, ttl, now=out.now)
        url = f"{out.public_url.rstrip('/')}/subscribe/link?token={quote(token, safe='')}"
    return DirectMessage(
        f"{ask.purpose}-link", "email", alias, ask.address, MAIL_TEXT[ask.purpose].format(url=url), deadline,
        request_id, subject=MAIL_SUBJECT[ask.purpose],
    )  # fmt: skip


# --- checking a code or a link ---------------------------------------------------------------------------------------


class Check(StrEnum):
    RIGHT = "right"
    DONE = "done"  # confirmed before (a double tap)
    UNKNOWN = "unknown"  # forged, or not ours
    EXPIRED = "expired"
    SPENT = "spent"  # too many wrong codes
    WRONG = "wrong"
    MALFORMED = "malformed"  # not six digits: not counted


@dataclass(frozen=True)
class Checked:
    outcome: Check
    request: Row | None = None
    attempts_left: int = 0


def request_id_of(token: str, secret: SecretStr, now: float) -> int | None:
    try:
        claims = verify(token, secret, now=now)
    except TokenError:
        return None
    request_id = claims.get("r")
    if claims.get("p") != REQUEST_PURPOSE or type(request_id) is not int or request_id <= 0:
        return None
    return request_id


async def check_code(out: Outside, request_token: str, typed: str, purpose: str) -> Checked:
    request_id = request_id_of(request_token, out.secret, out.now)
    row = None if request_id is None else await out.store.get_subscription_request(request_id)
    if row is None or row["purpose"] != purpose or row["channel"] != Channel.SMS:
        return Checked(Check.UNKNOWN)
    early = _state_check(row, out.now)
    if early is not None:
        return early
    code = unicodedata.normalize("NFKC", typed).replace(" ", "")
    if not re.fullmatch(r"[0-9]{6}", code):
        return Checked(Check.MALFORMED, row, row["max_attempts"] - row["attempts"])
    right = hmac.compare_digest(row["code_hash"], code_hash(out.secret, row["address"], code))
    if not right or (purpose == "me" and row["subscriber_id"] is None):
        left = await out.store.count_subscription_attempt(row["id"], out.now)
        return Checked(Check.WRONG if left else Check.SPENT, row, left or 0)
    return Checked(Check.RIGHT, row)


async def check_link(out: Outside, token: str) -> Checked:
    """The e-mailed subscription link: RIGHT while its request is pending (nothing is changed here)."""
    try:
        claims = verify(token, out.secret, now=out.now)
    except ExpiredToken:
        return Checked(Check.EXPIRED)
    except TokenError:
        return Checked(Check.UNKNOWN)
    request_id, nonce = claims.get("r"), claims.get("n")
    if claims.get("p") != LINK_PURPOSE or type(request_id) is not int or not isinstance(nonce, str):
        return Checked(Check.UNKNOWN)
    row = await out.store.get_subscription_request(request_id)
    if row is None or row["channel"] != Channel.EMAIL or row["purpose"] != "subscribe":
        return Checked(Check.UNKNOWN)
    if not hmac.compare_digest(row["code_hash"], code_hash(out.secret, row["address"], nonce)):
        return Checked(Check.UNKNOWN)
    return _state_check(row, out.now) or Checked(Check.RIGHT, row)


def _state_check(row: Row, now: float) -> Checked | None:
    if row["state"] == "confirmed":
        return Checked(Check.DONE, row)
    if row["state"] != "pending" or row["expires_at"] <= now:
        return Checked(Check.EXPIRED, row)
    if row["attempts"] >= row["max_attempts"]:
        return Checked(Check.SPENT, row)
    return None


async def claim_me_request(out: Outside, row: Row) -> int | None:
    """Spend a /me request whose code was right; the resident's id, or None when it was spent meanwhile."""
    if not await out.store.confirm_subscription_request(row["id"], out.now):
        return None
    return int(row["subscriber_id"])


# --- subscribing -----------------------------------------------------------------------------------------------------


async def subscribe(store: Store, row: Row, now: float) -> Subscriber | None:
    """Create the resident or add the topics to the one with this address; None when the request was taken
    meanwhile (a double tap). NotifierError when the store refuses (the address was taken meanwhile)."""
    topics: list[str] = json.loads(row["topics"])
    channel, address = row["channel"], row["address"]
    source = f"web:{'qr-code' if channel == 'sms' else 'e-mail'} {row['area_code']}"
    async with store.db.transaction():
        if not await store.confirm_subscription_request(row["id"], now):
            return None
        existing = await (
            store.find_subscriber_by_phone(address) if channel == "sms" else store.find_subscriber_by_email(address)
        )
        if existing is None:
            contact = {"phone": address} if channel == "sms" else {"email": address}
            data = SubscriberIn.model_validate({
                "name": row["name"], "area_code": row["area_code"], "topics": topics, "channels": [channel],
                "consent_source": source, **contact,
            })  # fmt: skip
            subscriber = await store.create_subscriber(data, ACTOR_SUBSCRIBE)
        else:
            patch = added_topics(await store.get_subscriber(existing), topics, channel)
            subscriber = await store.update_subscriber(existing, patch, ACTOR_SUBSCRIBE)
        await store.set_subscription_request_subscriber(row["id"], subscriber.id)
        detail: dict[str, object] = {"request": row["id"], "source": source, "topics": topics, "new": existing is None}
        await store.audit(ACTOR_SUBSCRIBE, "subscriber.subscribe", "subscriber", subscriber.id, detail)
    return subscriber


def added_topics(current: Subscriber, topics: list[str], channel: str = "sms") -> SubscriberPatch:
    """The resident's topics plus the new ones; the channel consented to again (area and name stay)."""
    changes: dict[str, Any] = {"topics": list(dict.fromkeys([*current.topics, *topics]))}
    if set(topics) & set(current.opt_out_topics):
        changes["opt_out_topics"] = [t for t in current.opt_out_topics if t not in topics]
    if channel in current.opt_out_channels:
        changes["opt_out_channels"] = [c for c in current.opt_out_channels if c != channel]
    if channel not in current.channels:
        changes["channels"] = [*current.channels, channel]
    if current.consent.withdrawn_at is not None:
        changes["consent_withdrawn"] = False
    return SubscriberPatch.model_validate(changes)


# --- /me -----------------------------------------------------------------------------------------------------------


class MeLinkError(ValueError):
    """A /me link that must not open: ``expired`` tells an old link from a forged one."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def me_token(secret: SecretStr, subscriber_id: int, now: float) -> str:
    return sign({"p": ME_PURPOSE, "s": subscriber_id}, secret, ME_TTL, now=now)


def me_url(out: Outside, subscriber_id: int) -> str:
    token = me_token(out.secret, subscriber_id, out.now)
    return f"{out.public_url.rstrip('/')}/me?token={quote(token, safe='')}"


def read_me_token(token: str, secret: SecretStr, now: float) -> int:
    try:
        claims = verify(token, secret, now=now)
    except ExpiredToken:
        raise MeLinkError(expired=True) from None
    except TokenError:
        raise MeLinkError(expired=False) from None
    subscriber_id = claims.get("s")
    if claims.get("p") != ME_PURPOSE or type(subscriber_id) is not int or subscriber_id <= 0:
        raise MeLinkError(expired=False)
    return subscriber_id


@dataclass
class MySettings:
    """What a resident may change about themselves; ``channels`` in their preference order."""

    topics: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    quiet_start: str = ""
    quiet_end: str = ""
    language: str = "zh"


def usable_channels(subscriber: Subscriber) -> list[str]:
    """The channels the resident has an address for (only those can be ordered or chosen)."""
    addresses = {"sms": subscriber.phone, "email": subscriber.email, "wechat": subscriber.wechat_openid,
                 "wecom": subscriber.wecom_userid}  # fmt: skip
    return [kind for kind, address in addresses.items() if address]


def settings_errors(wanted: MySettings, subscriber: Subscriber, known_topics: set[str]) -> list[tuple[str, str]]:
    """(field, what is wrong) for each field the store would refuse or that makes no sense."""
    errors = []
    unknown = [t for t in wanted.topics if t not in known_topics]
    if unknown:
        errors.append(("topics", "unknown"))
    usable = usable_channels(subscriber)
    if any(c not in usable for c in wanted.channels) or len(set(wanted.channels)) != len(wanted.channels):
        errors.append(("channels", "unknown"))
    elif not wanted.channels:
        errors.append(("channels", "empty"))
    if bool(wanted.quiet_start) != bool(wanted.quiet_end):
        errors.append(("quiet_hours", "both"))
    elif wanted.quiet_start:
        try:
            QuietHours(start=wanted.quiet_start, end=wanted.quiet_end)
        except ValueError:
            errors.append(("quiet_hours", "format"))
    if wanted.language not in LANGUAGES:
        errors.append(("language", "unknown"))
    return errors


async def update_settings(store: Store, subscriber_id: int, wanted: MySettings) -> Subscriber:
    """Save checked settings (``settings_errors`` found nothing); audited as ``subscriber.update``."""
    quiet = QuietHours(start=wanted.quiet_start, end=wanted.quiet_end) if wanted.quiet_start else None
    current = await store.get_subscriber(subscriber_id)
    dropped = [c for c in current.opt_out_channels if c in wanted.channels]  # chosen again: consented again
    changes: dict[str, Any] = {"topics": wanted.topics, "channels": wanted.channels, "quiet_hours": quiet,
                               "language": wanted.language}  # fmt: skip
    if dropped:
        changes["opt_out_channels"] = [c for c in current.opt_out_channels if c not in wanted.channels]
    patch = SubscriberPatch.model_validate(changes)
    return await store.update_subscriber(subscriber_id, patch, ACTOR_ME, settings_by_resident=True)


async def leave(store: Store, subscriber_id: int) -> None:
    """Erase the resident: contact points and name go, delivery rows stay as anonymous counts; audited
    (``subscriber.delete`` by ``web:me``)."""
    await store.delete_subscriber(subscriber_id, ACTOR_ME)
