"""Token buckets per channel alias, shared by every worker task of one process.

A worker asks ``take(n)`` before claiming and claims no more than it was granted, so it never
holds leases while waiting for tokens; unused tokens go back with ``give_back``. Time is passed in
(epoch seconds) so the buckets are deterministic under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.base import Channel
from notifier.config import ChannelConfig


@dataclass
class TokenBucket:
    """``rate`` tokens per ``period`` seconds, holding at most ``rate`` (at least one) tokens."""

    rate: float
    period: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        return max(self.rate, 1.0)

    def refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate / self.period)
        self.updated = now if self.updated is None else max(self.updated, now)

    def available(self, now: float) -> int:
        self.refill(now)
        return int(self.tokens)

    def seconds_until_one(self, now: float) -> float:
        self.refill(now)
        missing = 1.0 - self.tokens
        return 0.0 if missing <= 0 else missing * self.period / self.rate


class RateLimiter:
    """The per-second and per-minute buckets of one alias; no bucket means no limit."""

    def __init__(self, per_second: float | None = None, per_minute: float | None = None) -> None:
        self.buckets = [TokenBucket(r, p) for r, p in ((per_second, 1.0), (per_minute, 60.0)) if r]

    @classmethod
    def for_channel(cls, config: ChannelConfig, channel: Channel | None = None) -> RateLimiter:
        """The alias's configured limits, else the adapter's documented ones."""
        per_second = config.rate_per_second or (channel.default_rate_per_second if channel else None)
        per_minute = config.rate_per_minute or (channel.default_rate_per_minute if channel else None)
        return cls(per_second, per_minute)

    def take(self, wanted: int, now: float) -> int:
        """Grant up to ``wanted`` sends now (possibly 0) and consume them from every bucket."""
        granted = min([wanted, *(b.available(now) for b in self.buckets)])
        for bucket in self.buckets:
            bucket.tokens -= granted
        return granted

    def give_back(self, unused: int) -> None:
        for bucket in self.buckets:
            bucket.tokens = min(bucket.capacity, bucket.tokens + unused)

    def wait_time(self, now: float) -> float:
        """Seconds until at least one send is allowed."""
        return max([0.0, *(b.seconds_until_one(now) for b in self.buckets)])
