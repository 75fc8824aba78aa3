"""Printout rate: print-ready notices rendered per second, beside WeasyPrint alone in one thread.

N heavy-pollution alerts, one per real village of the demo county (names from the demo's divisions
file), are rendered by ``BulletinRenderer``: template, QR code and PDF in its worker processes, all N
submitted at once as the bulletin channel does for a batch. The baseline renders the very same HTML
documents with WeasyPrint directly, one after the other in a single thread: what a plain
"call WeasyPrint" adapter would reach. Both sides are warmed up first (imports, font discovery), so
the figures are steady-state rates. The ratio is about the number of cores the pool can use.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import Result
from channels.bulletin_render import BulletinNotice, BulletinRenderer, html_to_pdf, render_html

DIVISIONS = Path(__file__).resolve().parents[1] / "notifier" / "demo" / "data" / "changle-divisions.csv"
PUBLIC_URL = "https://tongzhi.changle.gov.cn"
BODY = (
    "受不利气象条件影响，预计12月1日至12月4日我县将出现持续重污染天气过程，空气质量指数日均值将超过200。\n"
    "经县重污染天气应急指挥部研究，决定于12月1日12时启动重污染天气橙色预警（Ⅱ级）应急响应。\n"
    "请广大居民减少户外活动，儿童、老年人和慢性病患者尽量留在室内；外出时请佩戴口罩。"
)


def notices(count: int) -> list[BulletinNotice]:
    """``count`` orange alerts for the first villages of the demo county."""
    with DIVISIONS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    towns = {row["code"]: row["name"] for row in rows if row["level"] == "town"}
    villages = [row for row in rows if row["level"] == "village"][:count]
    issued = datetime(2026, 11, 30, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    return [
        BulletinNotice(
            title="关于启动重污染天气橙色预警（Ⅱ级）应急响应的通告",
            body=BODY,
            department_name="潍坊市生态环境局昌乐分局",
            issued_at=issued,
            severity="severe",
            area_code=row["code"],
            area_name=f"{towns[row['parent']]} {row['name']}",
            county_name="昌乐县",
            topic="air-quality",
        )
        for row in villages
    ]


async def pool_rate(batch: list[BulletinNotice], workers: int) -> float:
    renderer = BulletinRenderer(PUBLIC_URL, workers=workers)
    renderer.start()
    try:
        await asyncio.gather(*(renderer.render(notice) for notice in batch[:workers]))  # warm-up
        started = time.perf_counter()
        pdfs = await asyncio.gather(*(renderer.render(notice) for notice in batch))
        seconds = time.perf_counter() - started
    finally:
        await asyncio.to_thread(renderer.close)
    assert all(pdf.startswith(b"%PDF-") for pdf in pdfs)
    return len(batch) / seconds


def direct_rate(batch: list[BulletinNotice]) -> float:
    documents = [render_html(notice, PUBLIC_URL) for notice in batch]
    html_to_pdf(documents[0])  # warm-up
    started = time.perf_counter()
    for document in documents:
        html_to_pdf(document)
    return len(documents) / (time.perf_counter() - started)


async def bench_bulletin(quick: bool) -> list[dict[str, Any]]:
    """One record: printouts rendered per second by the pool, beside WeasyPrint alone in one thread."""
    count = 8 if quick else 40
    workers = min(4, os.cpu_count() or 1)
    batch = notices(count)
    value = await pool_rate(batch, workers)
    baseline = await asyncio.to_thread(direct_rate, batch)
    params = {"notices": count, "workers": workers, "paper": "A4", "pages_each": 1}
    return [
        {
            "name": "bulletin_render",
            "value": round(value, 3),
            "unit": "printouts/s",
            "baseline": round(baseline, 3),
            "ratio": round(value / baseline, 3) if baseline else 0.0,
            "params": params,
        }
    ]


def run(quick: bool) -> list[Result]:
    """The same, as the ``bench`` runner's ``Result`` records (printed as JSON lines)."""
    records = asyncio.run(bench_bulletin(quick))
    return [Result(r["name"], r["value"], r["unit"], r["baseline"], r["params"]).emit() for r in records]
