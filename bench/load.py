"""The API under load: staff keep working while a notice to a million residents is being delivered.

The service runs whole on 127.0.0.1 (``bench.service``: API and engine, 2 workers, batches of 500, the
configuration's defaults besides the batch size) on a database of N synthetic residents
(``bench.population``), its ``sms`` channel a no-op adapter that accepts every message at once (what is
measured is the service, not a gateway). A load client in its own process plays ``USERS`` members of
staff, each repeating, with no pause, one round of the work an issuing office does through the API:

    POST  /api/v1/subscribers             register a resident
    PATCH /api/v1/subscribers/{id}        change a resident (name, channel order) chosen at random
    POST  /api/v1/notices                 draft a notice to three residents
    POST  /api/v1/notices/{id}/submit     submit it
    POST  /api/v1/notices/{id}/approve    approve it (a second key: not by its author)
    GET   /api/v1/notices/{id}            look at it

Three phases, one after the other in the same run: the API load alone (``ROUNDS`` rounds per member of
staff); the delivery alone (one notice to all N residents approved as the API does it, the clock running
until the engine marks it done); then both at once (a second notice to all N, the load client running from
its approval until it is done). Records: ``load.api_p50`` and ``load.api_p99`` (milliseconds per request
during the delivery; baseline: the same alone) and ``load.delivery_rate`` (messages per second with the API
load; baseline: alone). Every answer should be 2xx: the others are counted in the params (operation, status).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import random
import secrets
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import Result, bench_settings, cpu_seconds, machine_share, median, migrate, open_store
from bench.population import populate
from bench.service import Service, free_port, running_service
from channels.base import Channel, OutboundMessage, SendResult, Sent
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn

USERS, ROUNDS, WORKERS, BATCH = 4, 40, 2, 500
STARTUP_SECONDS = 30.0
NEW_PHONES = itertools.count(1)  # the client's own counter: every registered resident has a new number


class AcceptAll(Channel):
    """Accepts every message at once."""

    max_batch = 500

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        return [Sent(f"d{m.delivery_id}") for m in batch]


def settings_for(path: Path, port: int) -> Settings:
    return Settings.model_validate(
        {
            "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
            "database": {"url": f"sqlite:///{path}"},
            "engine": {"workers": WORKERS, "batch_size": BATCH},
            "security": {"signing_secret": secrets.token_urlsafe(32)},
            "channels": {"sms": {"kind": "sms", "type": "outbox"}},  # replaced by AcceptAll
        }
    )


async def keys(path: Path) -> dict[str, str]:
    """An issuer's and an approver's API key of the department that issues on ``air-quality``."""
    store = await open_store(bench_settings(path))
    try:
        await store.upsert_department("environment", "生态环境分局", ["air-quality"])
        made = {}
        for role in (Role.ISSUER, Role.APPROVER):
            _, secret = await store.create_api_key(
                department="environment", role=role, name=f"bench {role}", actor="bench"
            )
            made[role.value] = secret
        return made
    finally:
        await store.db.close()


def notice_state(path: Path, notice_id: int) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT state FROM notices WHERE id = ?", (notice_id,)).fetchone()[0])
    finally:
        conn.close()


async def deliver(service: Service, path: Path, audience: int) -> tuple[float, dict[str, float]]:
    """Approve a notice to the whole county (as the API does: transition, then wake) and wait until it is
    done; messages per second, and this process's share of the machine meanwhile."""
    notice_in = NoticeIn.model_validate(
        {"topic": "air-quality", "title": "重污染天气红色预警", "body": "请减少户外活动。",
         "target": {"areas": ["370725"]}, "channels": ["sms"]}
    )  # fmt: skip
    notice, _ = await service.store.create_notice(notice_in, department="environment", created_by=None, actor="bench")
    approved_at, cpu_before = time.perf_counter(), cpu_seconds()
    await service.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
    service.engine.wake()
    while (state := await asyncio.to_thread(notice_state, path, notice.id)) != "done":
        if state in ("cancelled", "expired"):
            raise RuntimeError(f"the notice was {state}")
        await asyncio.sleep(0.1)
    seconds = time.perf_counter() - approved_at
    counts = await service.store.delivery_counts(notice.id)
    sent = counts.get("sms", {}).get("sent", 0)
    # residents registered through the API meanwhile belong to the county too
    if set(counts) != {"sms"} or set(counts["sms"]) != {"sent"} or sent < audience:
        raise RuntimeError(f"expected at least {audience} sms deliveries, all sent; the engine made {counts}")
    return sent / seconds, machine_share(cpu_before, seconds)


class LoadClient:
    """The staff, in a spawned process: ``run(rounds)`` (None: until ``stop()``) -> per-request samples."""

    def __init__(self, url: str, api_keys: dict[str, str], residents: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_client_main, args=(url, api_keys, residents, child), daemon=True)
        self.process.start()

    def start(self, rounds: int | None) -> None:
        self.conn.send(("run", rounds))

    def stop(self) -> None:
        self.conn.send(("stop", None))

    def samples(self) -> list[tuple[str, float, int]]:
        """(operation, seconds, status) of every request since ``start``; waits for the rounds to end."""
        while not self.conn.poll(STARTUP_SECONDS):
            if not self.process.is_alive():
                raise RuntimeError("the load client died")
        samples: list[tuple[str, float, int]] = self.conn.recv()
        return samples

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send(("exit", None))
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


@contextlib.contextmanager
def load_client(url: str, api_keys: dict[str, str], residents: int) -> Iterator[LoadClient]:
    client = LoadClient(url, api_keys, residents)
    try:
        yield client
    finally:
        client.close()


def _client_main(url: str, api_keys: dict[str, str], residents: int, conn: Connection) -> None:
    asyncio.run(_client(url, api_keys, residents, conn))


async def _client(url: str, api_keys: dict[str, str], residents: int, conn: Connection) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=USERS)) as session:
        while True:
            command, rounds = await loop.run_in_executor(None, conn.recv)
            if command == "exit":
                return
            stop = asyncio.Event()
            samples: list[tuple[str, float, int]] = []
            users = [
                asyncio.create_task(_staff(session, api_keys, residents, n, rounds, stop, samples))
                for n in range(USERS)
            ]
            if rounds is None:
                await loop.run_in_executor(None, conn.recv)  # ("stop", None)
                stop.set()
            await asyncio.gather(*users)
            conn.send(samples)


async def _staff(
    session: Any,
    api_keys: dict[str, str],
    residents: int,
    user: int,
    rounds: int | None,
    stop: asyncio.Event,
    samples: list[tuple[str, float, int]],
) -> None:
    rng = random.Random(user)
    issuer = {"Authorization": f"Bearer {api_keys['issuer']}"}
    approver = {"Authorization": f"Bearer {api_keys['approver']}"}
    done = 0
    while not stop.is_set() and (rounds is None or done < rounds):
        tag = f"{user}-{done}-{time.monotonic_ns()}"
        await _call(session, samples, "create_resident", "POST", "/api/v1/subscribers", issuer, {
            "name": f"新居民{tag}", "area_code": "370725001001", "phone": f"+86137{next(NEW_PHONES):08d}",
            "topics": ["air-quality"], "channels": ["sms"],
        })  # fmt: skip
        some = rng.randrange(1, residents + 1)
        patch = {"name": f"居民{some}改", "channels": rng.choice([["sms"], ["wechat", "sms"]])}
        await _call(session, samples, "change_resident", "PATCH", f"/api/v1/subscribers/{some}", issuer, patch)
        draft = {
            "topic": "air-quality", "title": "道路施工通知", "body": "明日9时至17时朝阳路封闭施工，请绕行。",
            "target": {"subscribers": [rng.randrange(1, residents + 1) for _ in range(3)]}, "channels": ["sms"],
        }  # fmt: skip
        notice = await _call(session, samples, "create_notice", "POST", "/api/v1/notices", issuer, draft)
        if notice is not None:
            path = f"/api/v1/notices/{notice['id']}"
            await _call(session, samples, "submit_notice", "POST", f"{path}/submit", issuer, None)
            await _call(session, samples, "approve_notice", "POST", f"{path}/approve", approver, {})
            await _call(session, samples, "get_notice", "GET", path, issuer, None)
        done += 1


async def _call(
    session: Any,
    samples: list[tuple[str, float, int]],
    operation: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
) -> Any:
    started = time.perf_counter()
    async with session.request(method, path, headers=headers, json=body) as response:
        data = await response.json(content_type=None) if response.status != 204 else None
    samples.append((operation, time.perf_counter() - started, response.status))
    return data if response.status < 300 else None


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summary(samples: list[tuple[str, float, int]]) -> dict[str, Any]:
    ms = [s * 1000 for _, s, _ in samples]
    failures = Counter((operation, status) for operation, _, status in samples if status >= 300)
    by_operation = {}
    for operation in dict.fromkeys(op for op, _, _ in samples):
        mine = [s * 1000 for op, s, _ in samples if op == operation]
        by_operation[operation] = [round(median(mine), 1), round(percentile(mine, 0.99), 1)]
    return {
        "requests": len(samples),
        "not_2xx": {f"{op} {status}": n for (op, status), n in failures.items()},
        "p50_ms": percentile(ms, 0.5),
        "p99_ms": percentile(ms, 0.99),
        "p50_p99_ms_by_operation": by_operation,
    }


async def phases(path: Path, port: int, audience: int, client: LoadClient) -> tuple[dict[str, Any], ...]:
    settings = settings_for(path, port)
    async with running_service(settings, channels=lambda: {"sms": AcceptAll("sms")}) as service:
        await asyncio.sleep(0.5)  # idle, as a running service would be
        client.start(ROUNDS)
        alone = summary(await asyncio.to_thread(client.samples))
        rate_alone, machine_alone = await deliver(service, path, audience)
        client.start(None)
        rate_loaded, machine_loaded = await deliver(service, path, audience)
        client.stop()
        loaded = summary(await asyncio.to_thread(client.samples))
    rates = {"alone": rate_alone, "loaded": rate_loaded}
    return alone, loaded, rates, {"delivery_alone": machine_alone, "delivery_with_api_load": machine_loaded}


def run(quick: bool) -> list[Result]:
    logging.basicConfig(level=logging.ERROR)  # the service's own log is not what is measured
    audience = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "load.db"
        asyncio.run(migrate(path))
        populate(str(path), audience)
        api_keys = asyncio.run(keys(path))
        port = free_port()
        with load_client(f"http://127.0.0.1:{port}", api_keys, audience) as client:
            alone, loaded, rates, machine = asyncio.run(phases(path, port, audience, client))
    params = {
        "residents": audience, "staff": USERS, "workers": WORKERS, "batch_size": BATCH, "adapter": "no-op",
        "rounds_alone": ROUNDS, "machine": machine,
    }  # fmt: skip
    api = {**params, "during_delivery": loaded, "alone": alone, "baseline": "the same requests with no delivery"}
    delivery = {**params, "api_requests_during": loaded["requests"], "baseline": "the same notice with no API load"}
    return [
        Result("load.api_p50", loaded["p50_ms"], "ms", alone["p50_ms"], api).emit(),
        Result("load.api_p99", loaded["p99_ms"], "ms", alone["p99_ms"], api).emit(),
        Result("load.delivery_rate", rates["loaded"], "messages/s", rates["alone"], delivery).emit(),
    ]
