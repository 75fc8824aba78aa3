"""Housekeeping for rosters and publicity lists: personal data kept no longer than the department says.

- ``erase_expired_rosters``: a roster's rows are erased (``Store.erase_roster``, audited as ``roster.erase``
  by ``engine``) once ``departments.roster_retention_days`` (default 180) have passed since the last notice
  using it ended, the last day of its publicity lists, or its upload when nothing used it; never while a
  notice that has not ended uses it.
- ``withdraw_ended_publicity``: a publicity list whose last day has passed (in the server's timezone) is
  withdrawn once, with an audit entry ``publicity.withdrawn``; its public page answers 410 from the day after
  ``until`` whether or not this chore has run yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from notifier.domain.errors import Conflict
from notifier.engine.context import EngineContext

log = logging.getLogger(__name__)


async def erase_expired_rosters(ctx: EngineContext, now: float) -> int:
    """Erase every roster past its retention; the number erased."""
    erased = 0
    for row in await ctx.store.rosters_past_retention(now):
        try:
            if await ctx.store.erase_roster(int(row["id"]), "engine", reason="retention"):
                erased += 1
                log.info("roster %s of department %s erased after its retention", row["id"], row["department"])
        except Conflict:
            continue  # a notice using it was created since the query: kept until that one ends
    return erased


def local_date(ctx: EngineContext, now: float) -> str:
    """``now`` as YYYY-MM-DD in the server's timezone: the day a publicity period is counted in."""
    return datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(ctx.settings.server.timezone)).date().isoformat()


async def withdraw_ended_publicity(ctx: EngineContext, now: float) -> int:
    """Withdraw every publicity list whose period ended; the number withdrawn."""
    return len(await ctx.store.withdraw_ended_publicity(local_date(ctx, now), "engine"))
