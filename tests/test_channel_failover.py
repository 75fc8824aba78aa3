"""The circuit breaker (table-driven, fake clock) and the failover channel over real HTTP adapters."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import Channel, Failed, OutboundMessage, Retry, SendResult, Sent
from channels.failover import CircuitBreaker, CircuitState, FailoverChannel, FailoverOptions
from channels.generic_http import GenericHttpChannel, GenericHttpOptions
from tests.fake_gateway import Reply, fake_gateway


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Steps: ("fail"|"ok"|"untried", None) record a result; ("wait", s) advances the clock; ("admit", n) asks for n
# messages. Each step is followed by the expected state, and for "admit" by how many messages were let through.
BREAKER_TABLE: list[tuple[str, list[tuple[str, float, CircuitState, int | None]]]] = [
    ("opens after 3 consecutive failures", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.OPEN, None), ("admit", 10, CircuitState.OPEN, 0)]),
    ("a success resets the count", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("ok", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.CLOSED, None), ("admit", 4, CircuitState.CLOSED, 4)]),
    ("failures older than the window do not count", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("wait", 61, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.OPEN, None)]),
    ("half-open after the cool-down lets exactly one probe through", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.OPEN, None), ("wait", 29, CircuitState.OPEN, None),
        ("admit", 5, CircuitState.OPEN, 0), ("wait", 1, CircuitState.OPEN, None),
        ("admit", 5, CircuitState.HALF_OPEN, 1), ("admit", 5, CircuitState.HALF_OPEN, 0)]),
    ("a good probe closes the circuit", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.OPEN, None), ("wait", 30, CircuitState.OPEN, None),
        ("admit", 5, CircuitState.HALF_OPEN, 1), ("ok", 0, CircuitState.CLOSED, None),
        ("admit", 5, CircuitState.CLOSED, 5)]),
    ("a failed probe re-opens it for a new cool-down", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.OPEN, None), ("wait", 30, CircuitState.OPEN, None),
        ("admit", 5, CircuitState.HALF_OPEN, 1), ("fail", 0, CircuitState.OPEN, None),
        ("wait", 29, CircuitState.OPEN, None), ("admit", 5, CircuitState.OPEN, 0),
        ("wait", 1, CircuitState.OPEN, None), ("admit", 5, CircuitState.HALF_OPEN, 1)]),
    ("a probe never sent (the batch's time ran out) leaves the next admit to probe", [
        ("fail", 0, CircuitState.CLOSED, None), ("fail", 0, CircuitState.CLOSED, None),
        ("fail", 0, CircuitState.OPEN, None), ("wait", 30, CircuitState.OPEN, None),
        ("admit", 5, CircuitState.HALF_OPEN, 1), ("untried", 0, CircuitState.HALF_OPEN, None),
        ("admit", 5, CircuitState.HALF_OPEN, 1), ("ok", 0, CircuitState.CLOSED, None)]),
]


@pytest.mark.parametrize(("steps"), [steps for _, steps in BREAKER_TABLE], ids=[name for name, _ in BREAKER_TABLE])
def test_circuit_breaker(steps: list[tuple[str, float, CircuitState, int | None]]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, window=60, cool_down=30, clock=clock)
    for number, (action, value, state, admitted) in enumerate(steps):
        got = None
        if action == "fail":
            breaker.failure()
        elif action == "ok":
            breaker.success()
        elif action == "untried":
            breaker.untried()
        elif action == "wait":
            clock.now += value
        else:
            got = breaker.admit(int(value))
        assert (breaker.state, got) == (state, admitted), f"step {number}: {action} {value}"


def test_retry_after_counts_down_the_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, window=60, cool_down=30, clock=clock)
    assert breaker.retry_after() == 0.0
    breaker.failure()
    clock.now += 12
    assert breaker.retry_after() == 18.0


def msg(n: int) -> OutboundMessage:
    return OutboundMessage(n, 1, "sms", "sms", f"+861380013{n:04d}", "明天停水。", f"n1-s{n}-sms")


def gateway_channel(alias: str, base: str) -> GenericHttpChannel:
    return GenericHttpChannel(alias, GenericHttpOptions(url=base + "/send", body_template="{{ to }}", timeout=0.5))


async def test_fails_over_to_the_backup_when_the_primary_keeps_failing() -> None:
    clock = Clock()
    options = FailoverOptions(aliases=["primary", "backup"], failure_threshold=2, window=60, cool_down=30)
    channel = FailoverChannel("sms", options, clock=clock)
    async with fake_gateway(Reply(503), Reply(500), Reply(200)) as primary, fake_gateway(Reply(200)) as backup:
        members: dict[str, Channel] = {"primary": gateway_channel("primary", primary.url),
                                       "backup": gateway_channel("backup", backup.url)}
        channel.bind(members)
        for member in members.values():
            await member.open()
        try:
            first = await channel.send([msg(1)])  # 503: Retry, still closed
            second = await channel.send([msg(2)])  # 500: Retry, the circuit opens
            third = await channel.send([msg(3), msg(4)])  # all through the backup
            clock.now += 30
            fourth = await channel.send([msg(5), msg(6), msg(7)])  # probe msg 5 on the primary (200), rest backup
            fifth = await channel.send([msg(8)])  # closed again: primary
        finally:
            for member in members.values():
                await member.close()
    assert first == [Retry("http 503")] and second == [Retry("http 500")]
    assert third == [Sent("d3"), Sent("d4")] and fourth == [Sent("d5"), Sent("d6"), Sent("d7")]
    assert fifth == [Sent("d8")]
    assert [s.body.decode() for s in primary.seen] == ["+8613800130001", "+8613800130002", "+8613800130005",
                                                        "+8613800130008"]
    assert [s.body.decode() for s in backup.seen] == ["+8613800130003", "+8613800130004", "+8613800130006",
                                                       "+8613800130007"]
    assert channel.breakers["primary"].state is CircuitState.CLOSED


class Scripted(Channel):
    """A member answering from a script (one list of results per call), or raising."""

    max_batch = 2

    def __init__(self, alias: str, *calls: list[SendResult] | Exception) -> None:
        super().__init__(alias)
        self.calls = list(calls)
        self.seen: list[list[int]] = []

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        self.seen.append([m.delivery_id for m in batch])
        answer = self.calls.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("primary_calls", "expected", "primary_state"),
    [
        ([[Sent("a"), Failed("blocked")]], [Sent("a"), Failed("blocked")], CircuitState.CLOSED),
        ([RuntimeError("boom")], [Retry("p: RuntimeError"), Retry("p: RuntimeError")], CircuitState.OPEN),
        ([[Retry("x"), Retry("y")]], [Retry("x"), Retry("y")], CircuitState.OPEN),
        ([[Sent("a")]], [Retry("p: wrong number of results")] * 2, CircuitState.OPEN),
    ],
)
async def test_member_results_and_exceptions(
    primary_calls: list[Any], expected: list[SendResult], primary_state: CircuitState
) -> None:
    primary, backup = Scripted("p", *primary_calls), Scripted("b")
    channel = FailoverChannel("sms", FailoverOptions(aliases=["p", "b"], failure_threshold=2))
    channel.bind({"p": primary, "b": backup})
    assert await channel.send([msg(1), msg(2)]) == expected
    assert channel.breakers["p"].state is primary_state and backup.seen == []


async def test_batches_are_cut_to_the_members_size_and_every_open_circuit_means_retry() -> None:
    clock = Clock()
    primary = Scripted("p", [Retry("down")] * 2, [Retry("down")])
    backup = Scripted("b", RuntimeError("down too"))
    channel = FailoverChannel("sms", FailoverOptions(aliases=["p", "b"], failure_threshold=1, cool_down=30),
                              clock=clock)
    channel.bind({"p": primary, "b": backup})
    assert await channel.send([msg(1), msg(2), msg(3)]) == [Retry("down")] * 3
    assert primary.seen == [[1, 2], [3]]
    assert await channel.send([msg(4)]) == [Retry("b: RuntimeError")]
    clock.now += 10
    assert await channel.send([msg(5)]) == [Retry("every gateway's circuit is open", 20.0)]


def test_bind_and_options_are_checked() -> None:
    channel = FailoverChannel("sms", FailoverOptions(aliases=["p", "b"]))
    with pytest.raises(KeyError, match="'b'"):
        channel.bind({"p": Scripted("p")})
    with pytest.raises(ValueError, match="once"):
        FailoverOptions(aliases=["p", "p"])
    with pytest.raises(ValueError, match="at least 2"):
        FailoverOptions(aliases=["p"])
    assert channel.members == ["p", "b"]
