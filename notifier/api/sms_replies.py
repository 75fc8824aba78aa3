"""One inbound SMS, whichever gateway brought it (Kannel's MO hook, Aliyun's SmsUp push, Tencent's reply
callback): an opt-out word unsubscribes the sender from SMS, the alias's confirm word confirms the latest
notice awaiting that number's confirmation, any other text becomes a feedback item (``engine.replies``).

The database gets ``OPT_OUT_DEADLINE`` seconds; a reply it cannot take now is kept in the inbox
(``[engine] inbox_dir``) and applied by housekeeping. ``take_reply`` answers False only when the reply could
be neither stored nor kept: the hook then asks the gateway to deliver it again (a 503).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from notifier.api.keys import SETTINGS, STORE
from notifier.domain.contacts import mask_phone
from notifier.engine.optouts import OptOutInbox, OptOutReply, apply_opt_out, opt_out_word
from notifier.engine.replies import apply_text_reply

log = logging.getLogger("notifier.hooks")

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


__all__ = ["MAX_REPLY_CHARS", "OPT_OUT_DEADLINE", "take_reply"]
