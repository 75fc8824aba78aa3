"""WeChat rate: template messages per second through the whole engine to the fake WeChat server.

The server is the fake the tests use (``tests/fake_wechat.FakeWechat``: stable_token, template send with
token, template and follower checks, ``client_msg_id`` de-duplication), run in a separate process on
127.0.0.1 (``bench.sinks``, kind ``wechat``), following every synthetic resident's openid.

notifier
    N synthetic residents with an openid, one notice on ``wechat``; the engine runs as the service does,
    with ``WechatOfficialChannel`` (token from stable_token, cached) and the clock runs from the approval
    until every delivery is recorded ``sent``. Checked at the fake as the SMS benchmark checks
    (``bench.common.check_sends``): every resident got the message, and the fake accepted no more messages than
    the tries the engine recorded (a try whose answer did not come in time is sent again: at least once, by
    design; the fake takes one with the same ``client_msg_id`` within 10 minutes for that retry and counts it once).
raw (the baseline)
    A bare ``aiohttp.ClientSession`` with a keep-alive pool of the same size, posting the same template
    JSON (one token fetched beforehand) with as many requests in flight as the engine has workers: the
    adapter sends the messages of a batch one after the other, so the engine has one request in flight
    per worker.

Each side is measured three times, interleaved (notifier, raw, notifier, raw, ...; a fresh database and
a fresh fake server each round), and each side's median is reported, the samples in the params (one each with
``--quick``).

Record: ``wechat_engine`` (baseline: raw).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    BODY,
    Result,
    channel_settings,
    checked_send_rate,
    median,
    migrate,
    rounds,
    sampling,
)
from bench.population import populate
from bench.sinks import Sink, sink_process

APPID, SECRET, TEMPLATE = "wx0123456789abcdef", "app-secret-0123456789", "tpl-flood-warning"  # the fake's
WORKERS, BATCH, CONNECTIONS = 8, 100, 8
TITLE = "重污染天气橙色预警"


def openid(i: int) -> str:
    return f"openid{i:010d}"  # as bench.population makes them (every third resident, i % 3 == 2)


def template_body(i: int, round_: int) -> bytes:
    body = {
        "touser": openid(i),
        "template_id": TEMPLATE,
        "data": {"thing1": {"value": TITLE}, "thing2": {"value": BODY}},
        # not the engine's keys, nor an earlier round's: the fake would take them for retries
        "client_msg_id": f"raw{round_}-s{i}-wechat",
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def raw_rate(sink: Sink, numbers: list[int], round_: int) -> float:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        grant = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        async with session.post(f"{sink.url}/cgi-bin/stable_token", json=grant) as response:
            token = (await response.json())["access_token"]
        url = f"{sink.url}/cgi-bin/message/template/send"
        bodies = [template_body(i, round_) for i in numbers]
        accepted = 0

        async def worker(mine: list[bytes]) -> None:
            nonlocal accepted
            for data in mine:
                async with session.post(url, params={"access_token": token}, data=data, headers=headers) as response:
                    accepted += (await response.json())["errcode"] == 0

        started = time.perf_counter()
        await asyncio.gather(*(worker(bodies[i::WORKERS]) for i in range(WORKERS)))
        seconds = time.perf_counter() - started
    if accepted != len(bodies):
        raise RuntimeError(f"raw client: {accepted} of {len(bodies)} accepted")
    return len(bodies) / seconds


async def engine_rate(sink: Sink, path: Path, count: int) -> float:
    channel = {
        "kind": "wechat", "type": "wechat_official", "appid": APPID, "secret": SECRET, "template_id": TEMPLATE,
        "api_base": sink.url, "max_connections": CONNECTIONS,
    }  # fmt: skip
    settings = channel_settings(path, "wechat", channel, workers=WORKERS, batch_size=BATCH)
    rate, _ = await checked_send_rate(sink, settings, "wechat", count)
    return rate


def run(quick: bool) -> list[Result]:
    count = 1_000 if quick else 10_000
    residents = 3 * count  # every third resident has an openid
    numbers = [i for i in range(1, residents + 1) if i % 3 == 2]
    params: dict[str, Any] = {
        "messages": count, "workers": WORKERS, "batch_size": BATCH, "max_connections": CONNECTIONS,
        "server": "tests/fake_wechat.py, separate process", "raw_in_flight": WORKERS,
    }  # fmt: skip
    engine: list[float] = []
    raw: list[float] = []
    for n in range(rounds(quick)):  # interleaved: engine, raw, engine, raw, ...
        # a fresh fake server each round as well: it would take the engine's keys (notice 1 again) for retries
        followers = [openid(i) for i in numbers]
        with sink_process("wechat", followers=followers) as sink, tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "wechat.db"
            asyncio.run(migrate(path))
            populate(str(path), residents)
            engine.append(asyncio.run(engine_rate(sink, path, count)))
            raw.append(asyncio.run(raw_rate(sink, numbers, n)))
    versus = {**params, "baseline": "raw aiohttp", **sampling({"engine": engine, "raw": raw})}
    return [Result("wechat_engine", median(engine), "messages/s", median(raw), versus).emit()]
