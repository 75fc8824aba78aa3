"""Housekeeping for residents' feedback: its personal fields kept no longer than ``[feedback] keep_days``.

An item is erased ``keep_days`` after it was closed, or after it came when it was never closed (an item left
open that long is abandoned, and its sender's words are no reason to keep them forever). Erasing blanks the
text, the contact and the contact's name, the link to the resident, the answer and the form sender's hash, and
keeps the times, department, category, state and outcome, so the feedback report and the department
assessment still count the item. Each erased item gets an audit entry ``feedback.erase`` by ``engine``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from notifier.engine.context import EngineContext

log = logging.getLogger(__name__)


async def erase_expired_feedback(ctx: EngineContext, now: float) -> int:
    """Erase every feedback item past its retention; the number erased."""
    rows = await ctx.store.erase_expired_feedback(datetime.fromtimestamp(now, UTC), ctx.settings.feedback.keep_days)
    if rows:
        log.info("%d feedback items erased after their retention", len(rows))
    return len(rows)
