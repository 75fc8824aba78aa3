"""Rate limits that hold across processes: each alias's token buckets live in the database.

Every process sharing one database takes its tokens from the same rows (``rate_buckets``), in one short
write transaction per claim: read the buckets of the alias locked, refill them for the time passed, take
what the claim may send, write them back. Ten workers therefore send what one would, never ten times the
gateway's contracted rate, however many come and go. The arithmetic is ``ratelimit.TokenBucket``'s; the
process's own ``RateLimiter`` keeps the state it last saw, which is what ``wait_time`` answers from.

Why a shared bucket rather than a share of the rate per process: a share must be renegotiated whenever a
worker starts, dies or goes idle (an idle worker's share is lost meanwhile, a dead one's until the others
notice), while the bucket is exact at every moment and needs nothing when the set of workers changes. Its
cost is one write transaction of two statements per claimed batch of a limited alias, whatever the number
of its buckets (one reads and locks them all, creating those that are new; one writes them all back),
which is small beside the batch's own claim and record; aliases without a limit never touch the table.
The refill uses each process's clock and never moves a bucket's time backwards, so a host whose clock is
behind gets fewer tokens, never more: keep the hosts' clocks in step (NTP), as the leases already require.
"""

from __future__ import annotations

from notifier.engine.ratelimit import RateLimiter, TokenBucket
from notifier.store import Store


def bucket_key(alias: str, bucket: TokenBucket) -> str:
    return f"{alias}:{bucket.period:g}"


async def take_shared(store: Store, alias: str, limiter: RateLimiter, wanted: int, now: float) -> int:
    """Grant up to ``wanted`` sends of ``alias`` now (possibly 0) from the buckets every process shares."""
    if not limiter.buckets or wanted <= 0:
        return wanted
    async with store.db.transaction():
        await _load(store, alias, limiter, now)
        granted = limiter.take(wanted, now)
        await _save(store, alias, limiter)
    return granted


async def give_back_shared(store: Store, alias: str, limiter: RateLimiter, unused: int, now: float) -> None:
    """Tokens granted and not used (the queue had fewer deliveries) back to the shared buckets."""
    if not limiter.buckets or unused <= 0:
        return
    async with store.db.transaction():
        await _load(store, alias, limiter, now)
        limiter.give_back(unused)
        await _save(store, alias, limiter)


async def _load(store: Store, alias: str, limiter: RateLimiter, now: float) -> None:
    # always in the same order (per second, then per minute), so two transactions never wait on each other
    wanted = [(bucket_key(alias, bucket), bucket.capacity) for bucket in limiter.buckets]
    stored = await store.locked_rate_buckets(wanted, now)
    for bucket in limiter.buckets:
        bucket.tokens, bucket.updated = stored[bucket_key(alias, bucket)]
        bucket.tokens = min(bucket.tokens, bucket.capacity)  # a smaller limit configured since


async def _save(store: Store, alias: str, limiter: RateLimiter) -> None:
    saved = []
    for bucket in limiter.buckets:
        assert bucket.updated is not None
        saved.append((bucket_key(alias, bucket), bucket.tokens, bucket.updated))
    await store.save_rate_buckets(saved)
