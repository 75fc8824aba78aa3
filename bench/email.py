"""E-mail rate: messages per second through the whole engine to a local SMTP server (aiosmtpd).

The server (``bench.sinks``, kind ``smtp``: aiosmtpd's Controller, accepting every recipient and
discarding the message) runs in a separate process on 127.0.0.1. Three clients send to it, one after the
other, in the same run; each is measured three times, interleaved (notifier, raw, apprise, notifier, raw,
...), and each side's median is reported, the samples in the params (one each with ``--quick``):

raw
    A bare ``aiosmtplib.SMTP`` client on each of 4 connections, opened once and reused, each sending its
    share of the N messages one after the other; the message is one prebuilt MIME message of the same
    text (built once, not per recipient; text only, no HTML part or List-Unsubscribe, so a little smaller
    than the engine's): the client limit of this machine for this server.
notifier
    N synthetic residents with e-mail addresses, one notice on ``email``; the engine runs as the service
    does, with ``SmtpEmailChannel`` (``pool_size`` 4, ``List-Unsubscribe`` on with a signed link per
    resident to the public URL; a fresh database each round); the clock runs from the approval until every
    delivery is ``sent``. Checked at the server as the SMS benchmark checks (``bench.common.check_sends``): every
    resident got the message, and the server got no more messages than the tries the engine recorded (a try
    whose answer did not come in time is sent again: at least once, by design).
apprise
    Apprise's ``mailto://`` (insecure mode, to this server), the recipient being part of the URL. Two ways,
    a smaller N: one ``Apprise`` object holding every URL and one ``notify()`` call, which Apprise fans out
    over its thread pool (only the call is timed) -- the baseline, the faster of the two; and
    ``Apprise().add(url)`` + ``notify()`` per message, one after the other (in the params). Apprise opens
    one SMTP connection per notification (and loads the CA store for it, even in insecure mode: most of its
    time per message). Also in the params, not the baseline: Apprise's fastest way to send the same text to
    many, the recipients as ``to=`` of 4 URLs, each URL one connection sending one message per recipient
    in turn (``apprise_4_urls_many_to``); one message per recipient all the same, but one result per URL.

Records: ``email_engine`` (baseline: raw) and ``email_engine_vs_apprise`` (value: the engine, baseline:
Apprise). Targets (issue 4): at least 0.5 x raw and 30 x Apprise.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib

from bench.common import (
    BODY,
    Result,
    channel_settings,
    checked_send_rate,
    median,
    migrate,
    rounds,
    sampling,
    skipped,
)
from bench.population import populate
from bench.sinks import Sink, sink_process

SENDER = "notices@example.gov.cn"
SUBJECT = "重污染天气橙色预警"
POOL, WORKERS, BATCH = 4, 4, 50


def address(i: int) -> str:
    return f"r{i}@example.org"  # as bench.population makes them (every third resident, i % 3 == 1)


def prebuilt() -> bytes:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = "resident@example.org"
    mail["Subject"] = SUBJECT
    mail.set_content(BODY, charset="utf-8")
    return mail.as_bytes()


async def raw_rate(sink: Sink, count: int) -> float:
    raw = prebuilt()
    clients = [aiosmtplib.SMTP(hostname=sink.host, port=sink.port, start_tls=False) for _ in range(POOL)]
    for client in clients:
        await client.connect()

    async def worker(client: aiosmtplib.SMTP, numbers: range) -> None:
        for i in numbers:
            await client.sendmail(SENDER, [address(i)], raw)

    before = sink.received()
    started = time.perf_counter()
    await asyncio.gather(*(worker(client, range(n + 1, count + 1, POOL)) for n, client in enumerate(clients)))
    seconds = time.perf_counter() - started
    for client in clients:
        await client.quit()
    if sink.received() - before != count:
        raise RuntimeError(f"raw client: the server got {sink.received() - before} of {count}")
    return count / seconds


async def engine_rate(sink: Sink, path: Path, count: int) -> float:
    await migrate(path)
    populate(str(path), 3 * count)  # every third resident has an address
    channel = {
        "kind": "email", "type": "smtp", "host": sink.host, "port": sink.port, "start_tls": False,
        "pool_size": POOL, "from_address": SENDER, "from_name": "昌乐县人民政府", "list_unsubscribe": True,
    }  # fmt: skip
    settings = channel_settings(path, "email", channel, workers=WORKERS, batch_size=BATCH)
    rate, _ = await checked_send_rate(sink, settings, "email", count)
    return rate


def apprise_url(sink: Sink, to: str) -> str:
    return (
        f"mailto://{sink.host}:{sink.port}?mode=insecure&from={quote(SENDER)}&to={quote(to)}"
        f"&smtp={sink.host}&name={quote('昌乐县人民政府')}"
    )


def apprise_rates(sink: Sink, count: int) -> tuple[float, float, float]:
    """Messages/s of: one notify() to ``count`` URLs; Apprise().add(url).notify() per message; one notify() to
    ``POOL`` URLs sharing the ``count`` recipients as ``to=``."""
    import apprise

    urls = [apprise_url(sink, address(i)) for i in range(1, count + 1)]
    together = apprise.Apprise()
    for url in urls:
        if not together.add(url):
            raise RuntimeError("Apprise refused the mailto:// URL")
    before = sink.received()
    started = time.perf_counter()
    ok = together.notify(body=BODY, title=SUBJECT)
    concurrent = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for url in urls:
        single = apprise.Apprise()
        single.add(url)
        ok = single.notify(body=BODY, title=SUBJECT) and ok
    sequential = count / (time.perf_counter() - started)
    grouped = apprise.Apprise()
    for n in range(POOL):
        many = ",".join(address(i) for i in range(n + 1, count + 1, POOL))
        if not grouped.add(apprise_url(sink, many)):
            raise RuntimeError("Apprise refused the mailto:// URL with many recipients")
    started = time.perf_counter()
    ok = grouped.notify(body=BODY, title=SUBJECT) and ok
    many_to = count / (time.perf_counter() - started)
    if not ok or sink.received() - before != 3 * count:
        raise RuntimeError(f"Apprise: the server got {sink.received() - before} of {3 * count} messages")
    return concurrent, sequential, many_to


def run(quick: bool) -> list[Result]:
    count = 1_000 if quick else 10_000
    raw_count = 2_000 if quick else 20_000
    apprise_count = 100 if quick else 500
    params: dict[str, Any] = {
        "messages": count, "pool_size": POOL, "workers": WORKERS, "batch_size": BATCH, "list_unsubscribe": True,
        "server": "aiosmtpd, separate process", "raw_messages": raw_count, "raw_connections": POOL,
    }  # fmt: skip
    engine: list[float] = []
    raw: list[float] = []
    concurrent: list[float] = []
    sequential: list[float] = []
    many_to: list[float] = []
    with sink_process("smtp") as sink, tempfile.TemporaryDirectory() as folder:
        for n in range(rounds(quick)):  # interleaved: engine, raw, apprise, engine, raw, apprise, ...
            engine.append(asyncio.run(engine_rate(sink, Path(folder) / f"email{n}.db", count)))
            raw.append(asyncio.run(raw_rate(sink, raw_count)))
            try:
                together, one_by_one, grouped = apprise_rates(sink, apprise_count)
            except ImportError:
                continue
            concurrent.append(together)
            sequential.append(one_by_one)
            many_to.append(grouped)
    results = [
        Result(
            "email_engine", median(engine), "messages/s", median(raw),
            {**params, "baseline": "raw aiosmtplib", **sampling({"engine": engine, "raw": raw})},
        ).emit()
    ]  # fmt: skip
    if not concurrent:
        results.append(skipped("email_engine_vs_apprise", "messages/s", "apprise is not installed").emit())
    else:
        versus = {
            **params, "baseline": "apprise mailto://, one notify() to all URLs (its thread pool)",
            "apprise_messages": apprise_count, "apprise_one_notify_per_message": round(median(sequential), 1),
            "apprise_4_urls_many_to": round(median(many_to), 1),
            **sampling({"engine": engine, "apprise": concurrent, "apprise_one_notify_per_message": sequential,
                        "apprise_4_urls_many_to": many_to}),
        }  # fmt: skip
        results.append(
            Result("email_engine_vs_apprise", median(engine), "messages/s", median(concurrent), versus).emit()
        )
    return results
