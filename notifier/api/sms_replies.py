"""One inbound SMS, whichever gateway brought it (Kannel's MO hook, Aliyun's SmsUp push, Tencent's reply
callback): an opt-out word unsubscribes the sender from SMS, the alias's confirm word confirms the latest
notice awaiting that number's confirmation, any other text becomes a feedback item (``engine.replies``).

The database gets ``OPT_OUT_DEADLINE`` seconds; a reply it cannot take now is kept in the inbox
(``[engine] inbox_dir``) and applied by housekeeping. ``take_reply`` answers False only when the reply could
be neither stored nor kept: the hook then asks the gateway to deliver it again (a 503).

A gateway delivers a reply again when it did not hear our answer, though the reply was taken: a second "1"
would confirm the next older notice awaiting confirmation, a second question would be a second feedback item.
``first_push`` recognises such a repeat by what identifies the reply (Kannel's message id, the cloud
platforms' fields), remembered for ``REPEAT_WINDOW`` in ``hook_nonces``; ``forget_push`` releases it when the
reply could not be taken, so that the gateway's next delivery of it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from aiohttp import web

from notifier.api.keys import SETTINGS, STORE
from notifier.domain.contacts import mask_phone
from notifier.engine.optouts import OptOutInbox, OptOutReply, apply_opt_out, opt_out_word
from notifier.engine.replies import apply_text_reply

log = logging.getLogger("notifier.hooks")

REPEAT_WINDOW = 86400.0  # seconds a reply is remembered, so that a delivery of it again is not taken twice

MAX_REPLY_CHARS = 2048
OPT_OUT_DEADLINE = 5.0
"""Seconds a hook waits for the database before it keeps the reply in the inbox instead: a locked
database makes each writer wait out SQLite's busy timeout in turn, and the gateway should not wait on that."""


async def take_reply(request: web.Request, vendor: str, alias: str, phone: str, text: str) -> bool:
    """Apply one inbound SMS from ``phone`` (E.164) on ``alias``, or keep it; False when neither worked."""
    word = opt_out_word(text)
    if word is None:
        reply = OptOutReply(phone, alias, "", time.time(), text[:MAX_REPLY_CHARS])
        try:
            became = await asyncio.wait_for(
                apply_text_reply(request.app[STORE], request.app[SETTINGS], reply), OPT_OUT_DEADLINE
            )
        except Exception as exc:
            return await _keep(request, vendor, reply, exc)
        log.info("%s MO on %s from %s: %s (%d chars)", vendor, alias, mask_phone(phone), became, len(text))
        return True
    reply = OptOutReply(phone, alias, word, time.time())
    try:
        await asyncio.wait_for(apply_opt_out(request.app[STORE], reply), OPT_OUT_DEADLINE)
    except Exception as exc:
        return await _keep(request, vendor, reply, exc)
    return True


def _push_key(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8", errors="replace")).hexdigest()


async def first_push(request: web.Request, hook: str, identity: str) -> bool:
    """False for a reply this ``hook`` (e.g. ``kannel-mo:<alias>``) already took; True when new, or when the
    database cannot tell now (the reply is then taken, or kept, as any other)."""
    now = time.time()
    try:
        return await asyncio.wait_for(
            request.app[STORE].remember_hook_nonce(hook, _push_key(identity), now + REPEAT_WINDOW, now),
            OPT_OUT_DEADLINE,
        )
    except Exception:
        log.warning("%s: could not check for a repeated reply; taken as new", hook, exc_info=True)
        return True


async def forget_push(request: web.Request, hook: str, identity: str) -> None:
    """Release what ``first_push`` remembered: the reply was not taken, and its next delivery must be."""
    try:
        await asyncio.wait_for(request.app[STORE].forget_hook_nonce(hook, _push_key(identity)), OPT_OUT_DEADLINE)
    except Exception:
        log.warning("%s: a reply that could not be taken may be refused as a repeat", hook, exc_info=True)


async def _keep(request: web.Request, vendor: str, reply: OptOutReply, cause: Exception) -> bool:
    """The database refused a reply (an opt-out, a confirmation, feedback): keep it for housekeeping."""
    masked = mask_phone(reply.phone)
    try:
        await OptOutInbox(request.app[SETTINGS].engine.inbox_dir).keep(reply)
    except OSError:
        log.exception("%s MO reply on %s from %s could neither be stored (%s) nor kept in the inbox",
                      vendor, reply.alias, masked, type(cause).__name__)  # fmt: skip
        return False
    log.warning("%s MO reply on %s from %s could not be stored now (%s); kept for housekeeping",
                vendor, reply.alias, masked, type(cause).__name__)  # fmt: skip
    return True


__all__ = ["MAX_REPLY_CHARS", "OPT_OUT_DEADLINE", "REPEAT_WINDOW", "first_push", "forget_push", "take_reply"]
