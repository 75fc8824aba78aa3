"""The channels page: per configured alias, how much waits, how fast it goes out, what failed in the last hour
and why, and the state of its circuit breakers; with the sends per minute drawn as an SVG chart on the server.

    GET /console/channels

Queue and rates are read from the database, so they cover every worker. The circuit breakers (``failover``
aliases) live in each worker's adapters; every worker writes their states with its heartbeat
(``engine.heartbeat.breaker_states``), so the page of any node, one with no engine included, shows those of
every live worker (a few seconds old at most; those of the engine in this process as they are now). Where
the workers disagree (one has seen the gateway fail, another not yet), the member shows how many are in each
state, the worst first. An error is shown by its reason (the words before the first colon: the
adapter's reason code or its retry reason), with any run of digits and any e-mail address masked, since gateways
often repeat the recipient's number or address.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from notifier.api.keys import ENGINE, SETTINGS, STORE
from notifier.console.framework import Console, NavItem, page
from notifier.engine.heartbeat import breaker_states, dead_before

CHANNELS_PATH = "/console/channels"
WINDOW_MINUTES = 60
RATE_MINUTES = 5  # the send rate is the average of the last five minutes
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 600, 140, 28
_DIGITS = re.compile(r"\+?[0-9][0-9 -]{3,}[0-9]")
_EMAIL = re.compile(r"[^\s@<>]+@[^\s@<>]+")


def error_reason(text: str) -> str:
    """The reason of an error text, short and without a number or an address a gateway may have repeated."""
    reason = text.split(":", 1)[0].strip() or text.strip()
    reason = _EMAIL.sub("***", _DIGITS.sub("***", reason))
    return reason[:80]


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    minute: str
    n: int


WORST_FIRST = ("open", "half-open", "closed")


def _worst_first(state: str) -> int:
    """The order of breaker states on the page: open, half-open, closed; a state it does not know before all."""
    return WORST_FIRST.index(state) if state in WORST_FIRST else -1


@dataclass
class Breaker:
    """A failover member's circuit breaker over the live workers: ``state``, the worst of them (the page's
    colour), and ``label``, that state alone when every worker agrees, else each state and its count."""

    counts: Counter[str]

    @property
    def state(self) -> str:
        return min(self.counts, key=_worst_first)

    @property
    def label(self) -> str:
        if len(self.counts) == 1:
            return self.state
        return " · ".join(f"{state} {self.counts[state]}" for state in sorted(self.counts, key=_worst_first))


@dataclass
class AliasStats:
    alias: str
    kind: str
    adapter: str
    order: int
    queued: int = 0
    sending: int = 0
    per_minute: list[int] = field(default_factory=lambda: [0] * WINDOW_MINUTES)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (reason, state) -> n
    breakers: dict[str, Breaker] | None = None  # member alias -> its state over the live workers
    rate_limit: str = ""

    @property
    def sent_last_hour(self) -> int:
        return sum(self.per_minute)

    @property
    def rate_per_minute(self) -> float:
        return round(sum(self.per_minute[-RATE_MINUTES:]) / RATE_MINUTES, 1)

    @property
    def errors_last_hour(self) -> int:
        return sum(self.errors.values())

    def bars(self) -> list[Bar]:
        """The sends per minute as bars of the chart (oldest on the left), scaled to the busiest minute."""
        peak = max(self.per_minute) or 1
        width = CHART_WIDTH / WINDOW_MINUTES
        usable = CHART_HEIGHT - CHART_TOP
        bars = []
        for index, n in enumerate(self.per_minute):
            height = usable * n / peak
            minutes_ago = WINDOW_MINUTES - 1 - index
            bars.append(Bar(index * width, CHART_HEIGHT - height, max(width - 1, 1), height, f"-{minutes_ago}", n))
        return bars

    @property
    def peak(self) -> int:
        return max(self.per_minute)


def _minute_index(minute: str, now: datetime) -> int | None:
    """Where a "YYYY-MM-DDTHH:MM" UTC minute falls in the window ending at ``now`` (None outside it)."""
    try:
        at = datetime.strptime(minute, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    ago = int((now.replace(second=0, microsecond=0) - at).total_seconds() // 60)
    return WINDOW_MINUTES - 1 - ago if 0 <= ago < WINDOW_MINUTES else None


async def channel_stats(request: web.Request, now: datetime) -> list[AliasStats]:
    settings = request.app[SETTINGS]
    store = request.app[STORE]
    stats = {
        alias: AliasStats(alias, config.kind.value, config.type, config.order, rate_limit=_limit(config))
        for alias, config in settings.channels.items()
    }
    since = now - timedelta(minutes=WINDOW_MINUTES)
    for row in await store.channel_queue():
        entry = stats.get(row["alias"] or "")
        if entry is not None:
            setattr(entry, row["state"], getattr(entry, row["state"]) + int(row["n"]))
    for row in await store.channel_sent_per_minute(since):
        entry = stats.get(row["alias"] or "")
        index = _minute_index(row["minute"] or "", now)
        if entry is not None and index is not None:
            entry.per_minute[index] += int(row["n"])
    for row in await store.channel_errors(since):
        entry = stats.get(row["alias"] or "")
        if entry is not None:
            key = (error_reason(row["last_error"]), row["state"])
            entry.errors[key] = entry.errors.get(key, 0) + int(row["n"])
    alive_after = dead_before(settings.engine.heartbeat_seconds, now.timestamp())
    for alias, breakers in (await live_breakers(request, alive_after)).items():
        if alias in stats:
            stats[alias].breakers = breakers
    return sorted(stats.values(), key=lambda s: (s.kind, s.order, s.alias))


async def live_breakers(request: web.Request, alive_after: float) -> dict[str, dict[str, Breaker]]:
    """{failover alias: {member: Breaker}} over the workers that beat at ``alive_after`` or later (as their last
    heartbeat wrote them) and the engine of this process (as they are now)."""
    reported: dict[str, str] = {
        row["id"]: row["breakers"] for row in await request.app[STORE].worker_breakers(alive_after)
    }
    engine = request.app.get(ENGINE)
    if engine is not None and (here := breaker_states(engine.ctx)) is not None:
        reported[engine.ctx.worker] = here
    found: dict[str, dict[str, Breaker]] = {}
    for text in reported.values():
        try:
            states = json.loads(text)
        except ValueError:
            continue
        for alias, members in states.items() if isinstance(states, dict) else ():
            for member, state in members.items() if isinstance(members, dict) else ():
                found.setdefault(alias, {}).setdefault(member, Breaker(Counter())).counts[str(state)] += 1
    return found


def _limit(config: Any) -> str:
    if config.rate_per_second:
        return f"{config.rate_per_second:g}/s"
    if config.rate_per_minute:
        return f"{config.rate_per_minute:g}/min"
    return ""


@page()
async def channels_page(request: web.Request, console: Console) -> web.StreamResponse:
    now = datetime.fromtimestamp(console.now(), UTC)
    stats = await channel_stats(request, now)
    return console.render(
        "channels.html",
        stats=stats,
        engine_here=request.app.get(ENGINE) is not None,
        chart={"width": CHART_WIDTH, "height": CHART_HEIGHT, "minutes": WINDOW_MINUTES},
        rate_minutes=RATE_MINUTES,
        at=now,
    )

NAV_ITEMS = [NavItem(CHANNELS_PATH, "渠道", "Channels")]
ROUTES = [("GET", CHANNELS_PATH, channels_page)]
