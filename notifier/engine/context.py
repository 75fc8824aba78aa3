"""What every step of the engine shares: the store, the settings, the clock, the channels."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from channels.base import Channel
from notifier.config import Settings
from notifier.engine.ratelimit import RateLimiter
from notifier.engine.render import Renderer
from notifier.engine.retry import RetryPolicy
from notifier.errorlog import ErrorLog
from notifier.store import Store


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def aliases_of(settings: Settings, channels: Mapping[str, Channel], kind: str) -> list[str]:
    """The configured aliases serving a channel kind, in their configured order; an alias that is a member
    of another (a gateway behind a failover alias) is reached only through that one."""
    members = {member for channel in channels.values() for member in channel.member_aliases()}
    found = [
        (config.order, alias)
        for alias, config in settings.channels.items()
        if config.kind.value == kind and alias in channels and alias not in members
    ]
    return [alias for _, alias in sorted(found)]


@dataclass
class EngineContext:
    store: Store
    settings: Settings
    channels: dict[str, Channel]
    clock: Callable[[], float] = time.time
    worker: str = field(default_factory=new_worker_id)
    retry: RetryPolicy | None = None
    renderer: Renderer | None = None
    limiters: dict[str, RateLimiter] = field(default_factory=dict)
    # by alias: the aliases a failover alias sends through (sorted), under which its receipts are kept; [] for others
    failover_members: dict[str, list[str]] = field(default_factory=dict)
    contents: dict[int, dict[str, dict[str, str | None]]] = field(default_factory=dict)  # rendered, by notice
    beat_at: float | None = None  # this worker's last heartbeat (engine.heartbeat); None before it registers
    reminders_at: float = 0.0  # clock time of the next pass looking for unconfirmed residents (confirmations)
    errors: ErrorLog = field(default_factory=lambda: ErrorLog(logging.getLogger("notifier.engine")))

    def __post_init__(self) -> None:
        self.retry = self.retry or RetryPolicy.from_config(self.settings.engine)
        self.renderer = self.renderer or Renderer(public_url=self.settings.server.public_url)
        for alias, channel in self.channels.items():
            config = self.settings.channels.get(alias)
            self.limiters.setdefault(alias, RateLimiter.for_channel(config, channel) if config else RateLimiter())
            self.failover_members.setdefault(alias, sorted(self.settings.failover_members(alias)))

    @property
    def policy(self) -> RetryPolicy:
        assert self.retry is not None
        return self.retry

    @property
    def templates(self) -> Renderer:
        assert self.renderer is not None
        return self.renderer

    def aliases_of(self, kind: str) -> list[str]:
        """The configured aliases serving a channel kind, in their configured order."""
        return aliases_of(self.settings, self.channels, kind)

    def kind_of(self, alias: str) -> str | None:
        """The channel kind an alias serves (None for an adapter without a config table)."""
        config = self.settings.channels.get(alias)
        return config.kind.value if config else None

    def next_alias(self, kind: str, current: str) -> str | None:
        """The alias of the same kind after ``current``, for a permanent failure of one gateway."""
        aliases = self.aliases_of(kind)
        position = aliases.index(current) if current in aliases else len(aliases)
        return aliases[position + 1] if position + 1 < len(aliases) else None

    def served_kinds(self) -> list[str]:
        return sorted({config.kind.value for alias, config in self.settings.channels.items() if alias in self.channels})
