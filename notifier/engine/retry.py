"""Retry as a pure policy: given what happened, say whether and when to try again.

The policy never sleeps and never touches the database: the worker asks it, then writes the answer
to the queue (a new ``due_at``, or a final state). Backoff is exponential with "equal jitter":
``min(cap, base * 2**(attempt-1))`` scaled by a random factor in [0.5, 1.0), so retries of many
messages spread out without ever coming sooner than half the nominal delay. A provider's
``retry_after`` is honoured as given. No retry is scheduled past the notice's deadline or beyond
``max_attempts`` sends in all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from notifier.config import EngineConfig


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0  # seconds from now, when retry is True
    reason: str = ""  # why not, when retry is False: "attempts" or "deadline"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base: float
    cap: float
    jitter: Callable[[], float] = random.random  # uniform in [0, 1)

    @classmethod
    def from_config(cls, config: EngineConfig, jitter: Callable[[], float] = random.random) -> RetryPolicy:
        return cls(config.max_attempts, config.backoff_base, config.backoff_max, jitter)

    def nominal_delay(self, attempts: int) -> float:
        """The delay before the next try after ``attempts`` tries, before jitter."""
        return float(min(self.cap, self.base * 2.0 ** max(attempts - 1, 0)))

    def backoff(self, attempts: int) -> float:
        return self.nominal_delay(attempts) * (0.5 + 0.5 * self.jitter())

    def decide(self, attempts: int, retry_after: float | None, now: float, deadline: float | None) -> RetryDecision:
        """After a temporary failure of try number ``attempts`` (1 = first send)."""
        if attempts >= self.max_attempts:
            return RetryDecision(False, reason="attempts")
        delay = max(retry_after, 0.0) if retry_after is not None else self.backoff(attempts)
        if deadline is not None and now + delay >= deadline:
            return RetryDecision(False, reason="deadline")
        return RetryDecision(True, delay)
