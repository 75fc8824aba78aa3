"""Inbound SMS that are no opt-out: a confirmation when the text is the alias's confirm word, else feedback.

    confirm word (NFKC, trimmed, any case;     -> the latest notice awaiting this number's confirmation is
    the alias's ``confirm_word``, default "1")    confirmed (``confirmations.confirm_by_reply``); with nothing
                                                  awaiting, the reply is ignored
    anything else                              -> a feedback item on the latest notice sent to that number

Opt-out words are handled before (``optouts``). The Kannel MO hook calls ``apply_text_reply``; a reply the
database cannot take at once is kept in the inbox like an opt-out and applied by housekeeping.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from notifier.config import Settings
from notifier.engine.confirmations import ConfirmOutcome, confirm_by_reply
from notifier.engine.feedback import feedback_from_reply
from notifier.engine.optouts import OptOutReply
from notifier.store import Store

DEFAULT_CONFIRM_WORD = "1"


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def confirm_word(settings: Settings, alias: str) -> str:
    """The reply that confirms on this SMS alias (its ``confirm_word`` option)."""
    config = settings.channels.get(alias)
    word = config.options.get("confirm_word") if config is not None else None
    return _normal(word) if isinstance(word, str) and word.strip() else DEFAULT_CONFIRM_WORD


async def apply_text_reply(store: Store, settings: Settings, reply: OptOutReply) -> str:
    """Apply one reply that is no opt-out; what it became: confirmed, already, unmatched or feedback."""
    if _normal(reply.text) == confirm_word(settings, reply.alias):
        outcome = await confirm_by_reply(store, reply.phone, reply.alias)
        return "unmatched" if outcome in (ConfirmOutcome.UNKNOWN, ConfirmOutcome.NOT_ASKED) else str(outcome)
    subscriber_id = await store.find_subscriber_by_phone(reply.phone)
    received = datetime.fromtimestamp(reply.received_at, UTC)
    await feedback_from_reply(store, settings, "sms", reply.alias, reply.phone, subscriber_id, reply.text, received)
    return "feedback"


__all__ = ["apply_text_reply", "confirm_word"]
