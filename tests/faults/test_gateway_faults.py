"""An SMS gateway that misbehaves at the wire: slow, silent, erring, throttling, hanging up mid-answer.

The gateway is smsbox's ``sendsms`` as the Kannel adapter talks to it (one GET per message), played by a
scripted fake on 127.0.0.1: the first request for each resident meets the fault, every later one is
answered ``202 0: Accepted for delivery``. The engine runs by itself; the test moves its clock past the
wait the engine chose (backoff or the gateway's Retry-After), never touching the queue.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels import load_channels
from channels.http import OUTCOME_UNKNOWN
from notifier.config import Settings
from notifier.domain.models import Notice
from notifier.store import Store
from notifier.testing import FakeClock
from tests.databases import database_url, read_rows
from tests.engine.conftest import approved, delivery_rows, resident
from tests.fake_gateway import FakeGateway, Reply, dropping_peer, fake_gateway
from tests.faults.conftest import counts, deliveries_by_state, fault_settings, running, until

RESIDENTS = 6
ACCEPTED = Reply(202, "0: Accepted for delivery")


def kannel_settings(
    tmp_path: Path, gateway: FakeGateway, options: dict[str, object] | None = None, **engine: object
) -> Settings:
    sms = {
        "kind": "sms",
        "type": "kannel",
        "url": f"{gateway.url}/cgi-bin/sendsms",
        "username": "notifier",
        "password": "sendsms-secret",
        "timeout": 0.25,
        "connect_timeout": 0.25,
        **(options or {}),
    }
    return fault_settings(tmp_path, {"sms": sms}, **engine)


@contextlib.asynccontextmanager
async def sending(
    store: Store, settings: Settings, clock: FakeClock, residents: int = RESIDENTS
) -> AsyncIterator[Notice]:
    """``residents`` residents with a phone and a notice approved for them, and the engine running with the
    channels of ``settings`` on ``clock`` (``running``) for the block: the notice."""
    for _ in range(residents):
        await resident(store)
    notice = await approved(store)
    async with running(store, settings, load_channels(settings), clock):
        yield notice


def requests_per_phone(gateway: FakeGateway) -> Counter[str]:
    return Counter(seen.query["to"] for seen in gateway.seen)


async def due_times(tmp_path: Path) -> list[float]:
    """``due_at`` of every queued delivery, read from the database by a connection of its own."""
    rows = await read_rows(database_url(tmp_path, "faults.db"), "SELECT due_at FROM deliveries WHERE state = 'queued'")
    return [row[0] for row in rows]


FIRST_ATTEMPT_FAULTS = {
    # fault id: (the reply every resident's first request gets, the reason the issuer reads on the delivery,
    #            whether the gateway may have taken that first request for delivery)
    "slower-than-the-timeout": (Reply(202, "0: Accepted for delivery", delay=1.0), "timeout", True),
    "never-answers": (Reply(hang=True), "timeout", False),
    "http-500": (Reply(500, "Internal Server Error"), "http 500", False),
    "kannel-503-temporal-failure": (Reply(503, "Temporal failure, try again later."), "http 503", False),
    "hangs-up-mid-response": (Reply(202, "0: Accepted for delivery", drop=True), "connection error", True),
}


@pytest.mark.parametrize("fault", FIRST_ATTEMPT_FAULTS)
async def test_a_gateway_fault_is_retried_once_the_backoff_has_passed(
    fault: str, fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """The issuer sees every SMS ``queued`` again with the gateway's fault as its last error (``timeout``,
    ``http 500``, ``http 503``, ``connection error``), then ``sent`` once the backoff has passed; residents
    get the alert. Nothing is lost; the gateway is asked once per resident and attempt, never more (no
    retry storm while the backoff runs); a resident can get the SMS twice only when the gateway took the
    first request and its answer never reached us (a slow answer, a dropped connection): one message per
    attempt at most. Nobody steps in: the running engine retries by itself."""
    first, reason, maybe_taken = FIRST_ATTEMPT_FAULTS[fault]
    async with fake_gateway(*[first] * RESIDENTS, ACCEPTED) as gateway:
        settings = kannel_settings(tmp_path, gateway)
        async with sending(fault_store, settings, clock) as notice:

            async def all_requeued() -> bool:
                queued = await deliveries_by_state(fault_store, notice, "queued")
                return len(queued) == RESIDENTS and all(row["attempts"] == 1 for row in queued)

            await until(all_requeued, f"every delivery queued again after {fault}")
            queued = await deliveries_by_state(fault_store, notice, "queued")
            assert {row["last_error"].split(":")[0] for row in queued} == {reason}
            assert len(gateway.seen) == RESIDENTS  # one request each, none repeated while the clock stands
            assert min(await due_times(tmp_path)) > clock.now  # the backoff is waited out

            clock.advance(settings.engine.backoff_max)  # time passes; the engine notices by itself

            async def all_sent() -> bool:
                return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

            await until(all_sent, "every resident's SMS sent on the second attempt")

    rows = await delivery_rows(fault_store, notice.id)
    per_phone = requests_per_phone(gateway)
    assert len(per_phone) == RESIDENTS  # everyone
    assert set(per_phone.values()) == {2}  # the faulted request and the retry, nothing more
    assert {row["attempts"] for row in rows} == {2}
    assert all(row["last_error"] is None for row in rows)
    if not maybe_taken:
        accepted = Counter(s.query["to"] for s in gateway.seen[RESIDENTS:])
        assert set(accepted.values()) == {1}  # refused first, accepted once: nobody got it twice


async def test_a_kept_alive_connection_dropped_before_the_answer_is_a_recorded_try_not_a_hidden_resend(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """smsbox reads a sendsms request on a kept-alive connection and the connection drops before its answer:
    the gateway may have taken the message. The issuer sees that delivery ``queued`` again after one try, the
    drop as its last error, due after the backoff; the gateway got one request per resident, not a second one
    sent at once on a new connection with no trace in our records (aiohttp's resend of an idempotent request).
    The peer answers the first request of each connection and drops the connection on the second; one
    connection in the pool, so every other request meets the drop."""
    async with dropping_peer() as peer:
        sms = {"kind": "sms", "type": "kannel", "url": f"{peer.url}/cgi-bin/sendsms", "username": "notifier",
               "password": "sendsms-secret", "timeout": 2, "max_connections": 1}  # fmt: skip
        settings = fault_settings(tmp_path, {"sms": sms})
        async with sending(fault_store, settings, clock) as notice:

            async def every_one_tried() -> bool:
                rows = await delivery_rows(fault_store, notice.id)
                return len(rows) == RESIDENTS and all(
                    row["attempts"] == 1 and row["state"] in ("sent", "queued") for row in rows
                )

            await until(every_one_tried, "every resident's SMS tried once")
            assert await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS // 2, "queued": RESIDENTS // 2}}
            assert len(peer.requests) == RESIDENTS  # one request each: none sent again behind the engine's back
            assert peer.connections == RESIDENTS // 2
            queued = await deliveries_by_state(fault_store, notice, "queued")
            assert [(row["attempts"], row["last_error"]) for row in queued] == [(1, OUTCOME_UNKNOWN)] * (RESIDENTS // 2)
            assert min(await due_times(tmp_path)) > clock.now  # tried again after the backoff, as any Retry


async def test_retry_after_of_a_throttling_gateway_is_waited_out(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """A gateway over its rate answers ``429 Too Many Requests`` with ``Retry-After: 120``. The issuer sees
    the SMS ``queued`` with ``http 429`` as its last error and due two minutes later; no request goes out
    before then (no retry storm against a throttling gateway); then every resident gets it, once."""
    throttled = Reply(429, "Too Many Requests", headers={"Retry-After": "120"})
    async with fake_gateway(*[throttled] * RESIDENTS, ACCEPTED) as gateway:
        settings = kannel_settings(tmp_path, gateway)
        async with sending(fault_store, settings, clock) as notice:
            started = clock.now

            async def all_throttled() -> bool:
                return len(await deliveries_by_state(fault_store, notice, "queued")) == RESIDENTS and len(
                    gateway.seen
                ) == RESIDENTS

            await until(all_throttled, "every delivery queued again after the 429")
            assert await due_times(tmp_path) == [started + 120] * RESIDENTS
            queued = await deliveries_by_state(fault_store, notice, "queued")
            assert {row["last_error"] for row in queued} == {"http 429"}

            clock.advance(120)

            async def all_sent() -> bool:
                return await counts(fault_store, notice) == {"sms": {"sent": RESIDENTS}}

            await until(all_sent, "every SMS sent once the Retry-After has passed")

    assert set(requests_per_phone(gateway).values()) == {2}
    assert len(requests_per_phone(gateway)) == RESIDENTS


async def test_a_gateway_down_for_good_ends_in_failed_with_the_reason(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """A gateway that answers 500 to every try: after ``max_attempts`` tries the issuer sees every SMS
    ``failed`` with ``retries exhausted: http 500``; the notice finishes (``done``) instead of retrying
    forever, and the gateway was asked exactly ``max_attempts`` times per resident."""
    async with fake_gateway(Reply(500, "Internal Server Error")) as gateway:
        settings = kannel_settings(tmp_path, gateway, max_attempts=3)
        async with sending(fault_store, settings, clock) as notice:

            async def all_failed() -> bool:
                if len(await deliveries_by_state(fault_store, notice, "failed")) == RESIDENTS:
                    return True
                clock.advance(settings.engine.backoff_max)  # each retry's backoff passes at once
                return False

            await until(all_failed, "every delivery failed after its last attempt")

            async def done() -> bool:
                return (await fault_store.get_notice(notice.id)).state == "done"

            await until(done, "the notice done")

    rows = await delivery_rows(fault_store, notice.id)
    assert {row["last_error"] for row in rows} == {"retries exhausted: http 500"}
    assert set(requests_per_phone(gateway).values()) == {3}


async def test_an_answer_arriving_in_pieces_is_read_whole(fault_store: Store, tmp_path: Path, clock: FakeClock) -> None:
    """A JSON gateway on a slow link: its answer ``{"code": "0", "data": {"msgid": ...}}`` arrives in two
    packets. The issuer sees every SMS ``sent`` with the gateway's message id, on the first attempt: half
    an answer is never read as the answer (it used to be, and ``{"code": "0", "da`` failed every SMS for
    good as ``gateway-status``)."""
    answer = {"code": "0", "data": {"msgid": "GW-7731"}}
    async with fake_gateway(Reply(200, answer, split=0.05)) as gateway:
        sms = {
            "kind": "sms",
            "type": "generic_http",
            "url": f"{gateway.url}/api/send",
            "body_template": '{"mobile": {{ to|tojson }}, "content": {{ text|tojson }}}',
            "status_path": "code",
            "success_values": ["0"],
            "message_id_path": "data.msgid",
        }
        settings = fault_settings(tmp_path, {"sms": sms})
        async with sending(fault_store, settings, clock) as notice:

            async def settled() -> bool:
                return sum((await counts(fault_store, notice)).get("sms", {}).values()) == RESIDENTS and not (
                    await deliveries_by_state(fault_store, notice, "queued")
                )

            await until(settled, "every SMS answered")

    rows = await delivery_rows(fault_store, notice.id)
    assert [(row["state"], row["provider_message_id"], row["attempts"]) for row in rows] == [
        ("sent", "GW-7731", 1)
    ] * RESIDENTS
    assert len(gateway.seen) == RESIDENTS


async def test_a_gateway_slow_within_its_timeout_gets_each_message_once(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """A gateway that takes 0.3 s per message, well within the adapter's 3 s timeout (the margin keeps a loaded
    machine from turning a slow answer into a timeout), through a pool of 2 connections: 20 messages would need
    3 s, more than the engine gives one batch (0.8 of the 3 s lease).
    The issuer sees every SMS ``sent`` on its first attempt; each resident gets one message. (The engine
    used to claim all 20, give up on the whole batch at 2.4 s and send it again: residents got the alert
    up to five times and the SMS ended ``failed: retries exhausted: adapter timeout``.)"""
    residents = 20
    async with fake_gateway(Reply(202, "0: Accepted for delivery", delay=0.3)) as gateway:
        settings = kannel_settings(tmp_path, gateway, {"timeout": 3.0, "max_connections": 2}, lease_seconds=3)
        async with sending(fault_store, settings, clock, residents) as notice:

            async def settled() -> bool:
                rows = await delivery_rows(fault_store, notice.id)
                if len(rows) < residents or any(row["state"] == "sending" for row in rows):
                    return False
                queued = [row for row in rows if row["state"] == "queued"]
                if any(row["attempts"] > 0 for row in queued):
                    # only a retry waits on the clock: moving it while batches are still to be claimed would
                    # also expire the leases of the batch in flight and have it taken back and sent again
                    clock.advance(settings.engine.backoff_max)
                return not queued

            await until(settled, "every SMS answered for good")

    rows = await delivery_rows(fault_store, notice.id)
    assert Counter((row["state"], row["attempts"]) for row in rows) == {("sent", 1): residents}
    assert set(requests_per_phone(gateway).values()) == {1}
