"""Residents' feedback (意见建议、投诉举报): taken in from SMS replies, WeChat messages and the public form, and
answered through the engine's delivery path.

Intake (``take_feedback``): an item is linked to the notice it answers and that notice's department, and to
the resident when known: an SMS reply to the latest notice sent by SMS to that number's resident, a WeChat
message to the latest one sent by WeChat to that openid's resident, a form to the notice whose page carries it
(the phone given there names the resident when one has it). A reply that matches no notice is kept with no
department: admin keys see it. Its due time is ``[feedback] answer_within_hours`` after it came; an open item
past it is overdue. Text mentioning 投诉 or 举报 is a complaint, any other an opinion.

Answer (``answer_feedback``): the answer becomes a reply notice (``notices.answers_feedback``) to the one
resident on the channel the item came from (a form: SMS), approved at once by the staff member who answers,
referencing the notice answered; the engine fans it out and sends it like any notice (retries, rate limits,
the delivery record, quiet hours for this non-urgent message). An item whose sender is no known resident
cannot be reached: its answer is recorded (``reply_notice`` null) and the caller is told.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from notifier.config import Settings
from notifier.domain.enums import ChannelKind, NoticeState
from notifier.domain.errors import Conflict
from notifier.domain.feedback import FeedbackItem
from notifier.domain.models import ApiKeyInfo, NoticeIn
from notifier.store import Store
from notifier.store.feedback import NewFeedback

log = logging.getLogger(__name__)

MAX_TEXT = 2000
COMPLAINT_WORDS = ("投诉", "举报")
REPLY_KIND = {"sms": ChannelKind.SMS, "wechat": ChannelKind.WECHAT, "form": ChannelKind.SMS}


def clean_text(text: str) -> str:
    """A resident's words as stored: NFC, control and invisible characters dropped (line feeds kept), cut."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    return "".join(kept).strip()[:MAX_TEXT]


def category_of(text: str) -> str:
    return "complaint" if any(word in text for word in COMPLAINT_WORDS) else "opinion"


async def take_feedback(store: Store, settings: Settings, item: NewFeedback, *, actor: str,
                        received: datetime | None = None) -> int:
    """Store one item, linked to its notice's department; its id."""
    received = received or datetime.now(UTC)
    due = received + timedelta(hours=settings.feedback.answer_within_hours)
    if item.notice_id is not None and item.department is None:
        item = replace(item, department=(await store.get_notice(item.notice_id)).department)
    feedback_id = await store.add_feedback(item, received=received, due=due, actor=actor)
    log.info("feedback %s by %s on notice %s (%s)", feedback_id, item.channel, item.notice_id, item.category)
    return feedback_id


async def feedback_from_reply(
    store: Store, settings: Settings, channel: str, alias: str, contact: str, subscriber_id: int | None, text: str,
    received: datetime,
) -> int:
    """An SMS or WeChat message that is no opt-out and no confirmation: feedback on the latest notice sent there."""
    latest = await store.latest_notice_for(subscriber_id, channel) if subscriber_id is not None else None
    words = clean_text(text) or "(空)"
    item = NewFeedback(
        channel=channel, text=words, category=category_of(words), subscriber_id=subscriber_id, alias=alias,
        contact=contact, notice_id=latest["notice_id"] if latest else None,
        department=latest["department"] if latest else None,
    )
    return await take_feedback(store, settings, item, actor=f"{channel}-reply", received=received)


def reply_title(title: str) -> str:
    return f"关于“{title}”的答复"[:200] if title else "答复"


async def answer_feedback(store: Store, key: ApiKeyInfo, actor: str, item: FeedbackItem, text: str) -> int | None:
    """Record the answer and, when the sender is a known resident, send it to them as an approved reply notice
    on the channel the item came from; the reply notice's id, or None when no channel reaches the sender."""
    if item.state == "closed":
        raise Conflict(f"feedback {item.id} is closed")
    if item.erased_at is not None:
        raise Conflict(f"feedback {item.id} was erased after its retention: nobody to answer")
    if item.subscriber_id is None:
        await store.answer_feedback(item.id, text, None, actor)
        return None
    department = item.department or key.department
    answered = await store.get_notice(item.notice_id) if item.notice_id is not None else None
    topic = answered.topic if answered is not None else None
    if topic is None:
        topics = (await store.get_department(department)).topics
        if not topics:
            raise Conflict(f"department {department} issues on no topic, so no reply notice can carry the answer")
        topic = topics[0]
    notice = NoticeIn.model_validate({
        "topic": topic, "title": reply_title(answered.title if answered else ""), "body": text,
        "target": {"subscribers": [item.subscriber_id]}, "channels": [REPLY_KIND[item.channel].value],
        "references": item.notice_id,
    })
    async with store.db.transaction():
        created, _ = await store.create_notice(notice, department=department, created_by=key.id, actor=actor,
                                               answers_feedback=item.id)
        await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor=actor,
                                      approved_by=key.id, reason=f"answer to feedback {item.id}")
        await store.answer_feedback(item.id, text, created.id, actor)
    return created.id


__all__ = ["answer_feedback", "category_of", "clean_text", "feedback_from_reply", "take_feedback"]
