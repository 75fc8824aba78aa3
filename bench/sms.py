"""SMS rate: messages per second through the whole engine to a Kannel-style HTTP sink.

The sink (``bench.sinks``, kind ``kannel``) runs in a separate process on 127.0.0.1 and answers every
``GET /cgi-bin/sendsms`` with ``202 0: Accepted for delivery``, as smsbox does. Three clients send to it,
one after the other, in the same run; each is measured three times, interleaved (notifier, raw, apprise,
notifier, raw, ...), and each side's median is reported, the samples in the params (one each with
``--quick``):

raw
    A bare ``aiohttp.ClientSession`` with a keep-alive ``TCPConnector`` (as many connections as the
    adapter's pool) and a fixed number of requests in flight, sending the very query the adapter sends
    (the text of the engine's last message, read back from the sink, ``engine_text``): the client limit of
    this machine for this sink.
notifier
    N synthetic residents with phones, one notice on ``sms``; the engine runs as the service does
    (planner and workers, ``KannelChannel`` built from config; a fresh database each round) and the clock
    runs from the approval until every delivery is recorded ``sent``: queue, render, send, record.
apprise
    Apprise's generic form notification (``form://...?method=GET``, one GET per message to the same sink,
    the fields renamed to Kannel's), the recipient being part of the URL. Two ways, a smaller N (it opens a
    connection per message): one ``Apprise`` object holding every URL and one ``notify()`` call, which
    Apprise fans out over its thread pool (only the call is timed) -- the baseline, the faster of the two;
    and ``Apprise().add(url)`` + ``notify()`` per message, one after the other (in the params).

Each engine round is checked at the sink (``check_sends``): every resident got the message, and the sink got no
more messages than the tries the engine recorded (a try whose answer did not come in time is sent again: at least
once, by design), so a retry passes and a lost or unexplained extra message fails the run.

Records: ``sms_engine`` (baseline: raw; its params also hold the 1-minute load average after each round)
and ``sms_engine_vs_apprise`` (value: the engine, baseline: Apprise). ``bench.sms_pg`` runs the engine and
raw sides on PostgreSQL.
Targets (issue 4): at least 0.5 x raw and 10 x Apprise.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import aiohttp

from bench.common import (
    CpuTimes,
    Result,
    channel_settings,
    checked_send_rate,
    client_and_sink_apart,
    median,
    migrate,
    rounds,
    sampling,
    skipped,
)
from bench.population import populate
from bench.sinks import Sink, sink_process
from channels.sms_text import count_segments
from notifier.config import EngineConfig

USERNAME, PASSWORD = "bench", "bench-password"
WORKERS, CONNECTIONS = 4, 8
# the service's default batch (``[engine] batch_size``, 100; the Kannel adapter takes up to 100): until
# 2026-11-30 the benchmark set 50, and the adapter's worst-case limit made it 32
BATCH = EngineConfig.model_fields["batch_size"].default
RAW_IN_FLIGHT = 64


def phone(i: int) -> str:
    return f"+86139{i:08d}"  # as bench.population makes them


def kannel_query(to: str, text: str) -> dict[str, str]:
    """The query ``KannelChannel.params`` sends for ``text`` (no DLR URL)."""
    query = {"username": USERNAME, "password": PASSWORD, "to": to, "text": text, "charset": "UTF-8"}
    if count_segments(text).encoding == "ucs2":
        query["coding"] = "2"
    return query


def engine_text(sink: Sink) -> str:
    """The text of the engine's last message to the sink: the notice as the SMS template renders it, with
    the channel's signature and opt-out wording. The raw and Apprise clients send the very same text (they
    sent the bare notice body before, shorter by a third, which flattered them)."""
    text = dict(parse_qsl(sink.last_query())).get("text")
    if not text:
        raise RuntimeError("the sink has no message of the engine yet: run the engine side first")
    return text


async def raw_rate(sink: Sink, count: int) -> tuple[float, dict[str, float]]:
    """Messages per second of a bare aiohttp client: keep-alive pool, ``RAW_IN_FLIGHT`` requests in flight,
    the engine's text (``engine_text``): run after an engine round; and the processor time a message cost
    (``CpuTimes.per_message``)."""
    url = f"{sink.url}/cgi-bin/sendsms"
    text = engine_text(sink)
    queries = [kannel_query(phone(i), text) for i in range(1, count + 1)]
    accepted = 0

    async def worker(session: aiohttp.ClientSession, mine: list[dict[str, str]]) -> None:
        nonlocal accepted
        for query in mine:
            async with session.get(url, params=query) as response:
                await response.read()
                accepted += response.status == 202

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, [query]) for query in queries[:CONNECTIONS]))  # open the pool
        started, cpu = time.perf_counter(), CpuTimes.now()
        await asyncio.gather(*(worker(session, queries[i::RAW_IN_FLIGHT]) for i in range(RAW_IN_FLIGHT)))
        seconds, cost = time.perf_counter() - started, CpuTimes.now().per_message(cpu, count)
    if accepted != count + CONNECTIONS:
        raise RuntimeError(f"raw client: {accepted} of {count + CONNECTIONS} accepted")
    return count / seconds, cost


def kannel_channel(sink: Sink) -> dict[str, Any]:
    """The ``[channels.sms]`` table of the engine side: the Kannel adapter, pointed at the sink."""
    return {
        "kind": "sms", "type": "kannel", "url": f"{sink.url}/cgi-bin/sendsms", "username": USERNAME,
        "password": PASSWORD, "max_connections": CONNECTIONS,
    }  # fmt: skip


async def engine_rate(sink: Sink, path: Path, count: int) -> tuple[float, dict[str, float]]:
    await migrate(path)
    populate(str(path), count)
    settings = channel_settings(path, "sms", kannel_channel(sink), workers=WORKERS, batch_size=BATCH)
    return await checked_send_rate(sink, settings, "sms", count)


def apprise_url(sink: Sink, to: str, text: str) -> str:
    extras = {**kannel_query(to, text), "message": "text"}  # ':message=text' renames Apprise's body field
    extras.pop("text")
    fields = "&".join(f":{key}={quote(value, safe='')}" for key, value in extras.items())
    return f"form://{sink.host}:{sink.port}/cgi-bin/sendsms?method=GET&{fields}&:title=&:type=&:version="


def apprise_rates(sink: Sink, count: int) -> tuple[float, float]:
    """(messages/s of one notify() to ``count`` URLs, messages/s of one Apprise().add(url).notify() per message)."""
    import apprise

    text = engine_text(sink)
    urls = [apprise_url(sink, phone(i), text) for i in range(1, count + 1)]
    together = apprise.Apprise()
    for url in urls:
        if not together.add(url):
            raise RuntimeError("Apprise refused the form:// URL")
    before = sink.received()
    started = time.perf_counter()
    ok = together.notify(body=text, title="")
    concurrent = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for url in urls:
        single = apprise.Apprise()
        single.add(url)
        ok = single.notify(body=text, title="") and ok
    sequential = count / (time.perf_counter() - started)
    if not ok or sink.received() - before != 2 * count:
        raise RuntimeError(f"Apprise: the sink got {sink.received() - before} of {2 * count} messages")
    return concurrent, sequential


def cost_params(engine: list[dict[str, float]], raw: list[dict[str, float]]) -> dict[str, float]:
    """The median processor time a message cost each side, in microseconds: the engine's event-loop thread
    (where the adapter's requests run, as the raw client's do), its other threads (SQLite's connections) and,
    on PostgreSQL, the server's processes; the raw client's whole process. The engine reaches a fraction f of
    the raw rate only if its loop thread's cost is at most the raw cost / f (one core each)."""
    found = {
        "engine_loop_us_per_message": median([cost["loop"] for cost in engine]),
        "engine_other_threads_us_per_message": median([cost["other_threads"] for cost in engine]),
        "raw_us_per_message": median([cost["loop"] + cost["other_threads"] for cost in raw]),
    }
    if all("server" in cost for cost in engine):
        found["server_us_per_message"] = median([cost["server"] for cost in engine])
    return {name: round(value, 1) for name, value in found.items()}


def run(quick: bool) -> list[Result]:
    count = 2_000 if quick else 20_000
    raw_count = 5_000 if quick else 50_000
    apprise_count = 200 if quick else 1_000
    params: dict[str, Any] = {
        "messages": count, "workers": WORKERS, "batch_size": BATCH, "max_connections": CONNECTIONS,
        "sink": "separate process", "raw_messages": raw_count, "raw_in_flight": RAW_IN_FLIGHT,
    }  # fmt: skip
    engine: list[float] = []
    raw: list[float] = []
    concurrent: list[float] = []
    sequential: list[float] = []
    load: list[float] = []  # 1-minute load average after each round's engine and raw sides
    engine_costs: list[dict[str, float]] = []
    raw_costs: list[dict[str, float]] = []
    with (
        sink_process("kannel") as sink,
        tempfile.TemporaryDirectory() as folder,
        client_and_sink_apart(sink.pid) as placement,
    ):
        params.update(placement)
        for n in range(rounds(quick)):  # interleaved: engine, raw, apprise, engine, raw, apprise, ...
            rate, cost = asyncio.run(engine_rate(sink, Path(folder) / f"sms{n}.db", count))
            engine.append(rate)
            engine_costs.append(cost)
            rate, cost = asyncio.run(raw_rate(sink, raw_count))
            raw.append(rate)
            raw_costs.append(cost)
            load.append(os.getloadavg()[0])
            try:
                together, one_by_one = apprise_rates(sink, apprise_count)
            except ImportError:
                continue
            concurrent.append(together)
            sequential.append(one_by_one)
    samples = {"engine": engine, "raw": raw, "load_average": load}
    results = [
        Result(
            "sms_engine", median(engine), "messages/s", median(raw),
            {**params, "baseline": "raw aiohttp", **sampling(samples), **cost_params(engine_costs, raw_costs)},
        ).emit()
    ]  # fmt: skip
    if not concurrent:
        results.append(skipped("sms_engine_vs_apprise", "messages/s", "apprise is not installed").emit())
    else:
        versus = {
            **params, "baseline": "apprise form:// GET, one notify() to all URLs (its thread pool)",
            "apprise_messages": apprise_count, "apprise_one_notify_per_message": round(median(sequential), 1),
            **sampling({"engine": engine, "apprise": concurrent, "apprise_one_notify_per_message": sequential}),
        }  # fmt: skip
        results.append(Result("sms_engine_vs_apprise", median(engine), "messages/s", median(concurrent), versus).emit())
    return results
