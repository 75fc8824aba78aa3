"""Failover between SMS gateways: a primary and backups, each behind a circuit breaker.

Provider documentation: none (it composes other aliases); the breaker follows the classic pattern
(https://martinfowler.com/bliki/CircuitBreaker.html).

    [channels.sms]
    kind = "sms"
    type = "failover"
    aliases = ["kannel-cmcc", "sms-aliyun"]   # tried in this order
    failure_threshold = 5                      # consecutive Retry results ...
    window = 60                                # ... within this many seconds open the circuit
    cool_down = 30                             # seconds the circuit stays open before one probe

Each call hands every message to exactly one member, so one call never sends a message twice:
the first member whose breaker is closed takes the rest of the batch; a member whose cool-down has
passed (half-open) takes one message as its probe and the next member takes the rest.

    member result / state                       result                  breaker
    ------------------------------------------  ----------------------  ---------------------------------
    Sent                                        Sent (member's id)      success: closes a half-open circuit
    Failed (the gateway works, the message not) Failed                  success
    Retry, or an exception from the member      Retry                   failure: opens after N in window
    Retry(started=False): never sent (the       Retry(started=False)    neither; an unsent probe is
      batch's time ran out)                                             probed again
    every member's circuit open                 Retry(retry_after=      -
                                                soonest probe)

The members are adapters of their own aliases: the channel loader builds them and hands them over with
``bind(adapters)`` (see ``members``); opening and closing them stays with whoever opens every alias.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum

from pydantic import Field, field_validator

from channels.base import Channel, ChannelOptions, ChannelSetup, OutboundMessage, Retry, SendResult
from notifier.errorlog import ErrorLog

log = logging.getLogger("notifier.channels.failover")


class CircuitState(StrEnum):
    CLOSED = "closed"  # traffic flows; failures are counted
    OPEN = "open"  # no traffic until the cool-down has passed
    HALF_OPEN = "half-open"  # one probe is let through; its result closes or re-opens the circuit


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures within ``window`` seconds; probes after ``cool_down``."""

    def __init__(
        self, threshold: int, window: float, cool_down: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.window, self.cool_down, self.clock = threshold, window, cool_down, clock
        self.state = CircuitState.CLOSED
        self.opened_at = 0.0
        self._failures: deque[float] = deque()
        self._probing = False

    def admit(self, wanted: int) -> int:
        """How many of ``wanted`` messages may go through now: all (closed), 1 (a probe) or 0."""
        if self.state is CircuitState.OPEN and self.clock() >= self.opened_at + self.cool_down:
            self.state, self._probing = CircuitState.HALF_OPEN, False
        if self.state is CircuitState.CLOSED:
            return wanted
        if self.state is CircuitState.HALF_OPEN and not self._probing and wanted > 0:
            self._probing = True
            return 1
        return 0

    def retry_after(self) -> float:
        """Seconds until this breaker lets a probe through (0 when it would now)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.cool_down - self.clock())

    def success(self) -> None:
        self.state, self._probing = CircuitState.CLOSED, False
        self._failures.clear()

    def untried(self) -> None:
        """A message admitted that never reached the gateway (``Retry(started=False)``): neither a success nor a
        failure; a probe that was not sent leaves the next ``admit`` to let one through again."""
        self._probing = False

    def failure(self) -> None:
        now = self.clock()
        if self.state is CircuitState.HALF_OPEN:
            self._open(now)
            return
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()
        if self.state is CircuitState.CLOSED and len(self._failures) >= self.threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state, self.opened_at, self._probing = CircuitState.OPEN, now, False
        self._failures.clear()


class FailoverOptions(ChannelOptions):
    aliases: list[str] = Field(min_length=2, description="member aliases, primary first")
    failure_threshold: int = Field(5, ge=1, le=1000)
    window: float = Field(60.0, gt=0)
    cool_down: float = Field(30.0, gt=0)

    @field_validator("aliases")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an alias may appear once")
        return value


class FailoverChannel(Channel):
    Options = FailoverOptions
    max_batch = 50

    def __init__(
        self, alias: str, options: ChannelOptions | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(alias, options)
        opts = self.failover
        self.breakers = {
            name: CircuitBreaker(opts.failure_threshold, opts.window, opts.cool_down, clock) for name in opts.aliases
        }
        self._members: dict[str, Channel] = {}
        self._errors = ErrorLog(log)

    @property
    def failover(self) -> FailoverOptions:
        assert isinstance(self.options, FailoverOptions)
        return self.options

    @property
    def members(self) -> list[str]:
        """The aliases this channel needs bound before its first send."""
        return list(self.failover.aliases)

    def bind(self, adapters: Mapping[str, Channel]) -> None:
        """Take the member adapters from the loader; KeyError naming the first missing alias."""
        missing = [name for name in self.members if name not in adapters or adapters[name] is self]
        if missing:
            raise KeyError(f"channels.{self.alias}.aliases: no channel {missing[0]!r} to fail over to")
        self._members = {name: adapters[name] for name in self.members}

    def prepare(self, setup: ChannelSetup) -> None:
        self.bind(setup.adapters)

    def member_aliases(self) -> list[str]:
        return self.members

    async def close(self) -> None:
        self._errors.report()

    def reports_delivery(self) -> bool:
        """Only when every member does: any of them may carry the message."""
        return bool(self._members) and all(member.reports_delivery() for member in self._members.values())

    def receipt_ids(self, delivery_id: int, resend: int = 0) -> list[str]:
        """Any member's: which member sent the message is known only once its send is recorded."""
        return list(
            dict.fromkeys(i for member in self._members.values() for i in member.receipt_ids(delivery_id, resend))
        )

    def batch_limit(self, seconds: float) -> int:
        """What the slowest member answers in time: any of them may take the whole batch."""
        return min([self.max_batch, *(member.batch_limit(seconds) for member in self._members.values())])

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        if not self._members:
            raise RuntimeError(f"failover channel {self.alias!r} used before bind()")
        results: list[SendResult | None] = [None] * len(batch)
        pending = list(range(len(batch)))
        for name, member in self._members.items():
            breaker = self.breakers[name]
            taken = pending[: breaker.admit(len(pending))]
            if not taken:
                continue
            pending = pending[len(taken) :]
            for index, result in zip(taken, await self._call(name, member, [batch[i] for i in taken]), strict=True):
                results[index] = result
                if isinstance(result, Retry) and not result.started:
                    breaker.untried()
                elif isinstance(result, Retry):
                    breaker.failure()
                else:
                    breaker.success()
            if not pending:
                break
        soonest = min(b.retry_after() for b in self.breakers.values())
        return [
            result if result is not None else Retry("every gateway's circuit is open", soonest) for result in results
        ]

    async def _call(self, name: str, member: Channel, messages: list[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), member.max_batch):  # keep to the member's own batch size
            results += await self._call_once(name, member, messages[start : start + member.max_batch])
        return results

    async def _call_once(self, name: str, member: Channel, messages: list[OutboundMessage]) -> list[SendResult]:
        try:
            results = await member.send(messages)
        except Exception as exc:  # the engine would read it as Retry for every message: do the same here
            self._errors.exception(exc, "%s: member %s raised %s", self.alias, name, type(exc).__name__)
            return [Retry(f"{name}: {type(exc).__name__}")] * len(messages)
        if len(results) != len(messages):
            log.error("%s: member %s answered %d results for %d messages", self.alias, name, len(results),
                      len(messages))
            return [Retry(f"{name}: wrong number of results")] * len(messages)
        return results


__all__ = ["CircuitBreaker", "CircuitState", "FailoverChannel", "FailoverOptions"]
