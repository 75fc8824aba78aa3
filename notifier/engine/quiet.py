"""Quiet hours: non-urgent messages wait until a resident's quiet hours end (server.timezone).

The fan-out computes the same thing in SQL (``fanout_choose``); this is the Python twin used when a
delivery is created one at a time (a fallback to the next channel).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DAY = 86400


def local_seconds(now: float, timezone: str) -> int:
    """Seconds since local midnight in ``timezone`` at epoch time ``now``."""
    moment = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(timezone))
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _seconds(hhmm: str) -> int:
    return int(hhmm[:2]) * 3600 + int(hhmm[3:5]) * 60


def seconds_until_quiet_ends(local: int, start: str | None, end: str | None) -> int:
    """0 outside quiet hours (or with none set), else the seconds until they end."""
    if not start or not end:
        return 0
    qs, qe = _seconds(start), _seconds(end)
    if qs <= qe:
        return qe - local if qs <= local < qe else 0
    if local >= qs:
        return qe + DAY - local
    return qe - local if local < qe else 0
