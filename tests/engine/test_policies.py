"""The pure policies, table-tested: retry backoff, token buckets, quiet hours, alias order."""

from __future__ import annotations

import pytest

from notifier.engine.quiet import seconds_until_quiet_ends
from notifier.engine.ratelimit import RateLimiter
from notifier.engine.retry import RetryDecision, RetryPolicy
from subscribers.targeting import next_channel

POLICY = RetryPolicy(max_attempts=4, base=2.0, cap=10.0, jitter=lambda: 1.0)


@pytest.mark.parametrize(
    ("attempts", "retry_after", "deadline", "expected"),
    [
        (1, None, None, RetryDecision(True, 2.0 * 1.0)),  # base * 2**0, jitter factor 0.5 + 0.5 * 1.0
        (2, None, None, RetryDecision(True, 4.0)),
        (3, None, None, RetryDecision(True, 8.0)),
        (4, None, None, RetryDecision(False, reason="attempts")),
        (1, 30.0, None, RetryDecision(True, 30.0)),  # the provider's Retry-After wins
        (1, None, 1001.0, RetryDecision(False, reason="deadline")),  # would land after the deadline
        (1, None, 1100.0, RetryDecision(True, 2.0)),
    ],
)
def test_retry_decisions(
    attempts: int, retry_after: float | None, deadline: float | None, expected: RetryDecision
) -> None:
    assert POLICY.decide(attempts, retry_after, 1000.0, deadline) == expected


@pytest.mark.parametrize(
    ("jitter", "attempts", "delay"), [(0.0, 1, 1.0), (0.5, 2, 3.0), (0.0, 10, 5.0), (1.0, 10, 10.0)]
)
def test_backoff_is_capped_and_jittered_between_half_and_full(jitter: float, attempts: int, delay: float) -> None:
    policy = RetryPolicy(max_attempts=20, base=2.0, cap=10.0, jitter=lambda: jitter)
    assert policy.backoff(attempts) == delay


def test_token_buckets_limit_per_second_and_per_minute() -> None:
    limiter = RateLimiter(per_second=5, per_minute=12)
    assert limiter.take(10, now=0.0) == 5
    assert limiter.take(10, now=0.5) == 2  # 2.5 tokens back in the per-second bucket
    assert limiter.take(10, now=1.5) == 5
    assert limiter.take(10, now=3.0) == 0  # the minute's 12 are spent
    assert limiter.wait_time(3.0) == pytest.approx(2.0)  # 0.4 of a token missing at 12 per minute
    limiter.give_back(3)
    assert limiter.take(10, now=3.0) == 3


def test_unlimited_alias_grants_everything() -> None:
    assert RateLimiter().take(500, now=0.0) == 500


@pytest.mark.parametrize(
    ("local", "start", "end", "wait"),
    [
        (23 * 3600, "22:00", "07:00", 8 * 3600),  # 23:00 in a quiet night
        (3 * 3600, "22:00", "07:00", 4 * 3600),  # 03:00, after midnight
        (12 * 3600, "22:00", "07:00", 0),
        (7 * 3600, "22:00", "07:00", 0),  # the end is not quiet any more
        (13 * 3600, "12:00", "14:00", 3600),  # a quiet lunch hour
        (14 * 3600, "12:00", "14:00", 0),
        (5, None, None, 0),
    ],
)
def test_quiet_hours(local: int, start: str | None, end: str | None, wait: int) -> None:
    assert seconds_until_quiet_ends(local, start, end) == wait


@pytest.mark.parametrize(
    ("tried", "expected"),
    [([], "wechat"), (["wechat"], "sms"), (["wechat", "sms"], None)],
)
def test_next_channel_follows_preferences_and_skips_what_cannot_work(tried: list[str], expected: str | None) -> None:
    addresses = {"phone": "+8613900000000", "wechat_openid": "openid123", "email": None}
    preferences = ["email", "wechat", "wecom", "sms"]
    assert next_channel(preferences, ["sms", "wechat", "email"], addresses, [], tried) == expected
