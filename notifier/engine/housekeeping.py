"""The engine's periodic chores: take back expired leases and those of dead workers, expire notices, fall back on
silence, ask about print jobs (``areas.poll_jobs``), apply the opt-out replies kept in the inbox (``optouts``),
erase rosters and residents' feedback past their retention, forget expired callback nonces, residents'
requests, direct messages and staff login attempts older than a day, and receipts that found no send within
``early_receipts_kept``, finish.

Each chore is one query or a short loop; all are safe to run from several processes at once.
"""

from __future__ import annotations

import logging

from notifier.engine.areas import poll_jobs
from notifier.engine.confirmations import remind_unconfirmed
from notifier.engine.context import EngineContext
from notifier.engine.feedback_retention import erase_expired_feedback
from notifier.engine.heartbeat import take_back_leases
from notifier.engine.optouts import apply_kept_opt_outs
from notifier.engine.outcomes import give_up
from notifier.engine.roster_retention import erase_expired_rosters, withdraw_ended_publicity

log = logging.getLogger(__name__)

LOGIN_ATTEMPTS_KEPT = 86400.0  # seconds; the console's login throttle looks back 15 minutes
EARLY_RECEIPTS_KEPT = 86400.0  # seconds, at least; see early_receipts_kept


async def housekeeping(ctx: EngineContext) -> int:
    """Run every chore once; the number of rows they changed."""
    now = ctx.clock()
    changed = await take_back_leases(ctx, now)
    changed += len(await ctx.store.expire_notices(now))
    changed += await fall_back_unconfirmed(ctx, now)
    changed += await remind_unconfirmed(ctx, now)
    changed += await poll_jobs(ctx, now)
    changed += await apply_kept_opt_outs(ctx)
    changed += await ctx.store.purge_hook_nonces(now)
    changed += await erase_expired_rosters(ctx, now)
    changed += await erase_expired_feedback(ctx, now)
    changed += await withdraw_ended_publicity(ctx, now)
    changed += await ctx.store.purge_subscription_requests(now)  # residents' codes and links: a day at most
    changed += await ctx.store.purge_staff_login_attempts(now - LOGIN_ATTEMPTS_KEPT)  # client addresses
    changed += await ctx.store.purge_early_receipts(now - early_receipts_kept(ctx))
    changed += len(await ctx.store.finish_notices())
    ctx.errors.report_due()
    return changed


def early_receipts_kept(ctx: EngineContext) -> float:
    """How long a receipt that came before its send was recorded waits for that record: a day, or longer when
    a delivery's tries can span more (``max_attempts`` tries, each up to ``backoff_max`` after the last and
    held at most a lease). The record comes within the sending worker's lease, after a crash once the lease is
    taken back (``heartbeat.take_back_leases``), or at a later try of a send whose outcome was unknown (a
    Kannel message id is the same at every try)."""
    engine = ctx.settings.engine
    return max(EARLY_RECEIPTS_KEPT, engine.max_attempts * (engine.backoff_max + engine.lease_seconds))


async def fall_back_unconfirmed(ctx: EngineContext, now: float, limit: int = 500) -> int:
    """Sent deliveries with no receipt within the confirm window hand over to the next channel."""
    if ctx.settings.engine.confirm_window <= 0:
        return 0
    rows = await ctx.store.unconfirmed_deliveries(now, limit)
    if not rows:
        return 0
    notices = await ctx.store.notices_of_batch(r["notice_id"] for r in rows)
    async with ctx.store.db.transaction():
        for row in rows:
            await give_up(ctx, row, notices[row["notice_id"]], "not confirmed in time", now, from_state="sent")
    return len(rows)
