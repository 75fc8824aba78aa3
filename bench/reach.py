"""The red-alert day, simulated: how many residents a county-wide extreme alert reaches within 1, 5 and 10 minutes.

The county (``bench.county``): 100,000 synthetic residents over the demo county's 392 real villages, with
the contact coverage stated there (about 92 % phone, 63 % WeChat, 10 % e-mail, 7 % no address). The
gateways (``bench.gateways``): a Kannel smsbox, the WeChat API and an SMTP server, each in its own process on
127.0.0.1, with latency, 5 % of requests failing temporarily, 2 % of messages never arriving (reported
failed by their receipt), 3 % of receipts never coming, receipts posted to the service's own hooks
(``/hooks/kannel/dlr``, ``/hooks/wechat``) and each message's arrival at the resident recorded. The
service runs whole (``bench.service``: API, hooks and engine, 8 workers per channel) with the four adapters
built from config (``kannel``, ``wechat_official``, ``smtp``, ``bulletin`` writing printouts to a spool
folder). One notice, severity extreme, to the whole county on sms, wechat, email and bulletin, in
first-available mode with a 120 s confirm window (a message without a receipt by then goes to the
resident's next channel); the clock starts at its approval.

Time may be compressed by ``factor`` (params ``time_factor``): the gateways' latencies, the time to the
resident and the receipt delays are drawn in simulated seconds and waited in real seconds divided by
``factor``, and the engine's confirm window and retry backoff (``confirm_window``, ``backoff_base``,
``backoff_max``) are configured divided by ``factor``; a simulated time is ``factor`` times the real time
since the approval. The engine's own work (queries, rendering, PDF printouts) is not compressed, so a
compressed run is pessimistic; leases and heartbeats keep their real length. The
full run uses factor 1 (real time); ``--quick`` (1,000 residents in the villages of one town) uses 20.

Reached: a message arrived at the resident (the gateways' ground truth, not the engine's receipts: a
lost receipt does not unreach anyone, it only makes the engine try the next channel). Records, each a
percentage with the target as baseline: ``reach.reachable_1min``, ``_5min``, ``_10min`` (of residents
with any address; target 99 % within 10 minutes), ``reach.all_10min`` (of all residents, beside the
national goal of 82 % of the public within 10 minutes), and ``reach.villages_printout_1min`` (villages
whose printout was queued, written to the spool, within 1 minute; baseline: every village).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Result, cpu_seconds, machine_share, migrate
from bench.county import COUNTY, DEPARTMENT, DIVISIONS, TOPIC, Resident, coverage, divisions, populate, residents
from bench.gateways import BadDay, Gateway, Record, SimClock, gateway_process
from bench.service import Service, free_port, running_service
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn

TARGET_PCT, NATIONAL_GOAL_PCT = 99.0, 82.0
CONFIRM_WINDOW, WORKERS, BATCH = 120.0, 8, 100
MINUTES = (1, 5, 10)
APPID, APP_SECRET, TEMPLATE = "wx0123456789abcdef", "app-secret-0123456789", "tpl-red-alert"
ALERT = {
    "topic": TOPIC,
    "title": "暴雨红色预警",
    "body": "县气象台发布暴雨红色预警：未来3小时我县将出现100毫米以上强降雨。请立即停止户外活动，"
    "低洼地带和河道沿岸居民立即转移到安全地点，听从村干部指挥。",
    "severity": "extreme",
    "channels": ["wechat", "sms", "email", "bulletin"],
    "channel_mode": "first-available",
}


@dataclass
class Day:
    """What one simulated day produced."""

    approved_at: float  # simulated epoch seconds
    arrivals: dict[str, float]
    printouts: list[float]  # simulated epoch seconds at which each village's printout was queued
    villages: int
    gateways: dict[str, dict[str, int]]
    deliveries: dict[str, int]
    real_seconds: float
    machine: dict[str, float]  # the service process's share of the machine (bench.common.machine_share)


def settings_for(folder: Path, port: int, gateways: dict[str, Gateway], wechat_token: str, factor: float) -> Settings:
    sms, wechat, mail = gateways["kannel"], gateways["wechat"], gateways["smtp"]
    hook_token = secrets.token_urlsafe(24)
    base = f"http://127.0.0.1:{port}"
    return Settings.model_validate(
        {
            "server": {"host": "127.0.0.1", "port": port, "public_url": base},
            "database": {"url": f"sqlite:///{folder / 'reach.db'}"},
            "engine": {
                "workers": WORKERS, "batch_size": BATCH, "confirm_window": CONFIRM_WINDOW / factor,
                "backoff_base": 2.0 / factor, "backoff_max": 900 / factor,
            },
            "security": {"signing_secret": secrets.token_urlsafe(32)},
            "channels": {
                "sms": {
                    "kind": "sms", "type": "kannel", "url": f"{sms.url}/cgi-bin/sendsms", "username": "notifier",
                    "password": "bench-password", "dlr_url": f"{base}/hooks/kannel/dlr", "hook_token": hook_token,
                },
                "wechat": {
                    "kind": "wechat", "type": "wechat_official", "appid": APPID, "secret": APP_SECRET,
                    "template_id": TEMPLATE, "api_base": wechat.url, "callback_token": wechat_token,
                },
                "email": {
                    "kind": "email", "type": "smtp", "host": "127.0.0.1", "port": mail.port, "start_tls": False,
                    "from_address": "alerts@example.gov.cn", "from_name": "昌乐县应急管理局", "pool_size": 4,
                },
                "board": {
                    "kind": "bulletin", "type": "bulletin", "public_url": base, "county_name": "昌乐县",
                    "divisions_csv": str(DIVISIONS),
                    "spool_dir": str(folder / "spool"),
                },
            },
        }
    )  # fmt: skip


def outstanding(path: Path, notice_id: int) -> int | None:
    """Deliveries of the notice still to be sent, or sent and awaiting their receipt; None before its fan-out
    has finished."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        state = conn.execute("SELECT state FROM notices WHERE id = ?", (notice_id,)).fetchone()[0]
        if state not in ("scheduled", "sending", "done"):
            return None
        (waiting,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE notice_id = ? AND (state IN ('queued', 'sending')"
            " OR (state = 'sent' AND due_at IS NOT NULL AND subscriber_id IS NOT NULL))",
            (notice_id,),
        ).fetchone()
        return int(waiting)
    finally:
        conn.close()


def outcome(path: Path, notice_id: int) -> tuple[dict[str, int], int]:
    """(deliveries per channel and state, villages with a printout delivery)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT channel, state, COUNT(*) FROM deliveries WHERE notice_id = ? AND subscriber_id IS NOT NULL"
            " GROUP BY channel, state",
            (notice_id,),
        ).fetchall()
        (villages,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE notice_id = ? AND area_code IS NOT NULL AND channel = 'bulletin'",
            (notice_id,),
        ).fetchone()
    finally:
        conn.close()
    return {f"{channel}_{state}": n for channel, state, n in rows}, int(villages)


def printouts_queued(spool: Path, clock: SimClock) -> list[float]:
    """When each village's first printout reached the spool folder (``<spool>/<village>/*.pdf``), simulated
    epoch seconds: the moment a village office's print queue has it, before the engine records the batch."""
    first: dict[str, float] = {}
    for pdf in spool.glob("*/*.pdf"):
        at = clock.at(pdf.stat().st_mtime)
        first[pdf.parent.name] = min(at, first.get(pdf.parent.name, at))
    return list(first.values())


async def alert(service: Service, clock: SimClock, areas: list[str]) -> tuple[int, float]:
    """Draft and approve the red alert as the API does (transition, then wake the engine); (id, approved at)."""
    store = service.store
    notice_in = NoticeIn.model_validate({**ALERT, "target": {"areas": areas}})
    notice, _ = await store.create_notice(notice_in, department=DEPARTMENT, created_by=None, actor="bench")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="bench")
    service.engine.wake()
    return notice.id, clock.now()


async def wait_until_settled(path: Path, notice_id: int, clock: SimClock, approved_at: float) -> None:
    """Until nothing of the notice is queued, sending or awaiting its receipt, or 11 simulated minutes."""
    while clock.now() - approved_at < 660:
        left = await asyncio.to_thread(outstanding, path, notice_id)
        if left == 0:
            return
        await asyncio.sleep(1.0)


async def simulate(
    folder: Path, day: BadDay, areas: list[str], gateways: dict[str, Gateway], settings: Settings
) -> Day:
    started, cpu_before = time.perf_counter(), cpu_seconds()
    async with running_service(settings) as service:
        await asyncio.sleep(0.5)  # idle, as a running service would be
        notice_id, approved_at = await alert(service, day.clock, areas)
        await wait_until_settled(folder / "reach.db", notice_id, day.clock, approved_at)
        real_seconds = time.perf_counter() - started
        machine = machine_share(cpu_before, real_seconds)
    records: dict[str, Record] = {kind: gateway.report() for kind, gateway in gateways.items()}
    arrivals: dict[str, float] = {}
    for record in records.values():
        arrivals.update(record.arrivals)  # addresses of different kinds never collide
    deliveries, villages = outcome(folder / "reach.db", notice_id)
    printouts = printouts_queued(folder / "spool", day.clock)
    counts = {kind: record.counts for kind, record in records.items()}
    return Day(approved_at, arrivals, printouts, villages, counts, deliveries, real_seconds, machine)


def reached_within(people: list[Resident], day: Day, seconds: float) -> int:
    limit = day.approved_at + seconds
    return sum(any(day.arrivals.get(a, limit + 1) <= limit for a in p.addresses) for p in people)


def records(people: list[Resident], day: Day, params: dict[str, Any]) -> list[Result]:
    reachable = [p for p in people if p.addresses]
    results = []
    for minutes in MINUTES:
        share = 100 * reached_within(reachable, day, 60 * minutes) / len(reachable)
        extra = {"reachable": len(reachable), "baseline": "target: 99 % of the reachable within 10 minutes"}
        results.append(Result(f"reach.reachable_{minutes}min", share, "%", TARGET_PCT, {**params, **extra}))
    everyone = {f"all_{m}min_pct": round(100 * reached_within(people, day, 60 * m) / len(people), 2) for m in MINUTES}
    sent = sum(n for key, n in day.deliveries.items() if not key.endswith(("_queued", "_sending")))
    outcome_params = {
        **params, "baseline": "national goal: 82 % of the public within 10 minutes", **everyone,
        "messages_per_reachable_resident": round(sent / len(reachable), 3), "deliveries": day.deliveries,
        "gateways": day.gateways, "run_real_seconds": round(day.real_seconds, 1), **day.machine,
    }  # fmt: skip
    results.append(Result("reach.all_10min", everyone["all_10min_pct"], "%", NATIONAL_GOAL_PCT, outcome_params))
    queued = sum(t - day.approved_at <= 60 for t in day.printouts)
    printout_params = {
        **params, "baseline": "villages targeted", "printouts_queued": len(day.printouts),
        "last_printout_s": round(max(day.printouts, default=day.approved_at) - day.approved_at, 1),
    }  # fmt: skip
    results.append(Result("reach.villages_printout_1min", queued, "villages", day.villages, printout_params))
    return [r.emit() for r in results]


def run(quick: bool) -> list[Result]:
    logging.basicConfig(level=logging.ERROR)  # the service's own log is not what is measured
    count, factor = (1_000, 20.0) if quick else (100_000, 1.0)
    rows = divisions("370725001" if quick else None)
    villages = [row["code"] for row in rows if row["level"] == "village"]
    people = residents(count, villages)
    day = BadDay(SimClock(time.time(), factor))
    params: dict[str, Any] = {
        "residents": count, "villages": len(villages), **coverage(people), "time_factor": factor,
        "failure_pct": 100 * day.failure_rate, "undeliverable_pct": 100 * day.undeliverable_rate,
        "lost_receipt_pct": 100 * day.lost_receipt_rate, "confirm_window_s": CONFIRM_WINDOW,
        "mode": ALERT["channel_mode"], "workers": WORKERS, "batch_size": BATCH,
    }  # fmt: skip
    port, wechat_token = free_port(), secrets.token_urlsafe(16)
    hooks = {"hook_url": f"http://127.0.0.1:{port}/hooks/wechat?alias=wechat", "hook_token": wechat_token}
    with (
        tempfile.TemporaryDirectory() as name,
        gateway_process("kannel", day) as sms,
        gateway_process("wechat", day, **hooks) as wechat,
        gateway_process("smtp", day) as mail,
    ):
        folder = Path(name)
        asyncio.run(migrate(folder / "reach.db"))
        populate(folder / "reach.db", people, rows)
        gateways = {"kannel": sms, "wechat": wechat, "smtp": mail}
        settings = settings_for(folder, port, gateways, wechat_token, factor)
        area = rows[1]["code"] if quick else COUNTY
        outcome_day = asyncio.run(simulate(folder, day, [area], gateways, settings))
    return records(people, outcome_day, params)
