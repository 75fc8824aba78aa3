"""Worker heartbeats: how a process's leases outlive it by seconds, not by the whole lease.

Each engine registers its worker id (the name its leases carry) and beats every
``engine.heartbeat_seconds``. Housekeeping, in any process, takes back at once every lease of a worker
that has missed ``MISSED_BEATS`` beats (``take_back_leases``: its deliveries, resident and area, go back
in the queue, its notice fan-out is free to be claimed again) and forgets that worker; leases of a worker
that never registered still run until they expire. An engine that stops cleanly gives its own leases
back (``release``). A worker that was taken for dead (its event loop stalled longer than that) registers
again at its next beat and says so in the log: the batch it held may then have been sent twice.
Each beat also carries the states of the worker's circuit breakers (``breaker_states``), which live in its
failover adapters' memory, so that the console of any node shows them.
"""

from __future__ import annotations

import json
import logging

from channels.failover import FailoverChannel
from notifier.engine.context import EngineContext

log = logging.getLogger(__name__)

MISSED_BEATS = 3
"""Beats a worker may miss before its leases are taken back."""


def dead_before(heartbeat_seconds: float, now: float) -> float:
    """Workers whose last beat is older than this are dead."""
    return now - heartbeat_seconds * MISSED_BEATS


async def beat(ctx: EngineContext, *, force: bool = True) -> None:
    """Record this worker's heartbeat (with ``force=False`` only when one is due); register it if unknown."""
    now = ctx.clock()
    if not force and ctx.beat_at is not None and now - ctx.beat_at < ctx.settings.engine.heartbeat_seconds:
        return
    breakers = breaker_states(ctx)
    if not await ctx.store.beat_worker(ctx.worker, now, breakers):
        if ctx.beat_at is not None:
            log.warning(
                "worker %s missed its heartbeats and was taken for dead: its leases went back to the queue",
                ctx.worker,
            )
        await ctx.store.register_worker(ctx.worker, now, breakers)
    ctx.beat_at = now


def breaker_states(ctx: EngineContext) -> str | None:
    """This worker's circuit breakers as JSON, {failover alias: {member alias: state}}; None with no failover alias."""
    states = {
        alias: {member: breaker.state.value for member, breaker in adapter.breakers.items()}
        for alias, adapter in ctx.channels.items()
        if isinstance(adapter, FailoverChannel)
    }
    return json.dumps(states, sort_keys=True) if states else None


async def take_back_leases(ctx: EngineContext, now: float) -> int:
    """Expired leases and every lease of a dead worker back to the queue; how many deliveries.

    This worker beats first when a beat is due: it is alive (it is running this), and after a stall longer
    than ``MISSED_BEATS`` beats (a database locked past its busy timeout) it would otherwise take its own
    batch in flight for a dead worker's and send it again."""
    await beat(ctx, force=False)
    taken = await ctx.store.take_back_leases(now, dead_before(ctx.settings.engine.heartbeat_seconds, now))
    if taken:
        log.info("took back %d deliveries from expired leases or workers without a heartbeat", taken)
    return taken


async def release(ctx: EngineContext) -> None:
    """A clean stop: this worker's leases back to the queue at once, its registration gone."""
    released = await ctx.store.release_worker(ctx.worker)
    ctx.beat_at = None
    if released:
        log.info("worker %s gave back %d deliveries it had not finished", ctx.worker, released)
