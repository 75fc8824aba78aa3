"""Print-ready notices for village notice boards: HTML and CSS from a jinja2 template, PDF by WeasyPrint.

One ``BulletinNotice`` (a notice addressed to one village or town) becomes one PDF: A4 or A3 portrait,
the county government's red header, a large title, the body in plain paragraphs, the issuing department
and date at the bottom right with room for the seal, a colour band for alerts, and a QR code that opens
the subscription page pre-set to that area and topic.

Templates: ``templates/bulletin/notice.html.j2`` and ``templates/bulletin/notice.css`` (StrictUndefined,
autoescaped). The QR code is inline SVG made by segno, so it prints as vectors. Text needs a real CJK
font: the CSS asks for Noto Serif/Sans CJK SC (Debian ``fonts-noto-cjk``) and WeasyPrint embeds the
subset it uses, so the PDF prints the same on any printer. WeasyPrint subsets those large CFF fonts
fast only with HarfBuzz-Subset (Debian ``libharfbuzz-subset0``); without it a page takes seconds.

A3 is the A4 layout scaled by sqrt(2) (WeasyPrint's ``zoom``), so a poster reads the same, only larger.

Why a process pool (``concurrent.futures.ProcessPoolExecutor``) and not ``asyncio.to_thread``:
WeasyPrint's layout is pure Python and holds the GIL for the whole ~0.2 s of a page, so threads would
neither render two notices at once nor leave the event loop free while one renders. Worker processes
render in parallel on every core and the loop only waits on a future. Workers are started with
``spawn`` (no fork of a process that runs an event loop and threads) and warm up once (import and
font discovery) so the first notice is not slow.

References: WeasyPrint https://doc.courtbouillon.org/weasyprint/stable/ ,
segno https://segno.readthedocs.io/ , severity colours: GB/T 35965.1 practice and the heavy
air-pollution alert levels (yellow III, orange II, red I).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

import segno
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "bulletin"
A3_ZOOM = 2**0.5  # A3 is A4 scaled by sqrt(2) in both directions

Paper = Literal["A4", "A3"]


@dataclass(frozen=True)
class Band:
    """The colour band of an alert: warning colour, level and the CSS colours to print it with."""

    colour_name: str  # 蓝色 / 黄色 / 橙色 / 红色
    level: str  # Ⅳ级 ... Ⅰ级
    background: str
    foreground: str


# CAP severity -> Chinese warning colour (blue IV, yellow III, orange II, red I); "info" has no band.
SEVERITY_BANDS: dict[str, Band] = {
    "minor": Band("蓝色", "Ⅳ级", "#1f5fbf", "#ffffff"),
    "moderate": Band("黄色", "Ⅲ级", "#f5c400", "#3a2f00"),
    "severe": Band("橙色", "Ⅱ级", "#ee7700", "#ffffff"),
    "extreme": Band("红色", "Ⅰ级", "#d0021b", "#ffffff"),
}


@dataclass(frozen=True)
class PublicityTable:
    """A publicity list (公示) to print as a table: cells already masked by the engine, period as YYYY-MM-DD.

    It travels in a message's header block as one line, ``Publicity: <JSON>`` (``to_header``)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    period_from: str
    period_until: str
    complaint_phone: str

    def to_header(self) -> str:
        data = {
            "headers": list(self.headers),
            "rows": [list(row) for row in self.rows],
            "from": self.period_from,
            "until": self.period_until,
            "complaint_phone": self.complaint_phone,
        }
        return "Publicity: " + json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_header(cls, value: str) -> PublicityTable:
        """The table of a ``Publicity:`` header's value; ValueError when it is not one."""
        try:
            data = json.loads(value)
            headers = tuple(str(h) for h in data["headers"])
            rows = tuple(tuple(str(cell) for cell in row) for row in data["rows"])
            table = cls(headers, rows, str(data["from"]), str(data["until"]), str(data["complaint_phone"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a publicity table: {exc}") from None
        if any(len(row) != len(headers) for row in rows):
            raise ValueError("a publicity row has a different number of cells than the header")
        return table


def chinese_day(day: str) -> str:
    """``2026-12-01`` as ``2026年12月1日``."""
    moment = datetime.fromisoformat(day)
    return f"{moment.year}年{moment.month}月{moment.day}日"


@dataclass(frozen=True)
class BulletinNotice:
    """What one printed notice shows; ``area_code`` is the village (12 digits) or town (9 digits) code."""

    title: str
    body: str  # paragraphs separated by blank lines (single newlines are kept as paragraph breaks too)
    department_name: str
    issued_at: datetime
    severity: str  # info | minor | moderate | severe | extreme
    area_code: str
    area_name: str
    county_name: str
    topic: str
    paper: Paper = "A4"
    table: PublicityTable | None = None  # a publicity list: printed landscape, paginated, this area's rows only
    notice_id: int | None = None  # a publicity list's feedback link names its notice


def subscribe_url(public_url: str, notice: BulletinNotice) -> str:
    """The page the QR code opens: subscription pre-set to this area and (when known) topic."""
    query = urlencode({"area": notice.area_code, **({"topic": notice.topic} if notice.topic else {})})
    return f"{public_url.rstrip('/')}/subscribe?{query}"


def feedback_url(public_url: str, notice_id: int) -> str:
    """The public feedback form of a notice (``notifier.web.feedback_form``), which a publicity list prints."""
    return f"{public_url.rstrip('/')}/public/notices/{notice_id}/feedback"


def paragraphs(body: str) -> list[str]:
    """Body text as paragraphs: every non-empty line is one paragraph (notices are short)."""
    return [line.strip() for line in body.replace("\r\n", "\n").split("\n") if line.strip()]


def chinese_date(moment: datetime) -> str:
    """``2026年11月30日``: how official notices print their date."""
    return f"{moment.year}年{moment.month}月{moment.day}日"


def area_word(notice: BulletinNotice) -> str:
    """How the printout names its own area: 村 for a village, else 街道, 镇 or 乡 as the town's name ends."""
    if len(notice.area_code) == 12:
        return "村"
    return next((word for word in ("街道", "镇", "乡") if notice.area_name.endswith(word)), "镇")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_publicity_html(notice: BulletinNotice, public_url: str) -> str:
    """A publicity list as one HTML document: landscape pages, the table's header repeated on every page,
    the period and the complaint phone at the top of every page, the feedback form's link (text and QR code)
    and the page number at the bottom."""
    assert notice.table is not None
    table = notice.table
    link = feedback_url(public_url, notice.notice_id) if notice.notice_id is not None else None
    qr_svg = segno.make(link, error="m").svg_inline(scale=2, border=1, dark="#000000") if link else None
    return (
        _environment()
        .get_template("publicity.html.j2")
        .render(
            notice=notice,
            table=table,
            css=(TEMPLATE_DIR / "publicity.css").read_text(encoding="utf-8"),
            paragraphs=paragraphs(notice.body),
            government=f"{notice.county_name}人民政府",
            period=f"公示期：{chinese_day(table.period_from)}至{chinese_day(table.period_until)}",
            complaint=f"监督投诉电话：{table.complaint_phone}",
            feedback=f"意见反馈：{link}" if link else "",
            feedback_qr=qr_svg,
            issued_date=chinese_date(notice.issued_at),
        )
    )


def render_html(notice: BulletinNotice, public_url: str) -> str:
    """The notice as one self-contained HTML document (CSS inlined, QR code as inline SVG)."""
    if notice.table is not None:
        return render_publicity_html(notice, public_url)
    url = subscribe_url(public_url, notice)
    qr_svg = segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#000000")
    place = area_word(notice)
    return (
        _environment()
        .get_template("notice.html.j2")
        .render(
            notice=notice,
            css=(TEMPLATE_DIR / "notice.css").read_text(encoding="utf-8"),
            band=SEVERITY_BANDS.get(notice.severity),
            paragraphs=paragraphs(notice.body),
            issued_date=chinese_date(notice.issued_at),
            government=f"{notice.county_name}人民政府",
            qr_svg=qr_svg,
            qr_url=url,
            place=place,
            qr_caption=f"扫码订阅本{place}通知",
        )
    )


def html_to_pdf(html: str, paper: Paper = "A4") -> bytes:
    """PDF bytes of one HTML document; CPU bound, call it off the event loop."""
    from weasyprint import HTML  # lazily: 0.7 s, only renderers need it

    zoom = A3_ZOOM if paper == "A3" else 1.0
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(zoom=zoom)
    return pdf


def render_pdf(notice: BulletinNotice, public_url: str) -> bytes:
    """The print-ready PDF of one notice (synchronous; what a pool worker runs)."""
    return html_to_pdf(render_html(notice, public_url), notice.paper)


def _warm_up() -> None:
    """Pool initializer: import WeasyPrint and let fontconfig find the CJK fonts once per worker."""
    html_to_pdf("<p style=\"font-family: 'Noto Serif CJK SC'\">预热</p>")


class RendererUnavailable(Exception):
    """The worker pool is not started or broke (a worker died); a later render may work."""


class BulletinRenderer:
    """Renders notices in worker processes; ``start`` before the first ``render``, ``close`` at the end."""

    def __init__(self, public_url: str, workers: int | None = None) -> None:
        self.public_url = public_url
        self.workers = workers or min(4, os.cpu_count() or 1)
        self._pool: Executor | None = None

    def start(self) -> None:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_warm_up)

    async def render(self, notice: BulletinNotice) -> bytes:
        """PDF bytes of ``notice``, rendered in a worker process while the event loop keeps running."""
        if self._pool is None:
            raise RendererUnavailable("BulletinRenderer.start() was not called")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, render_pdf, notice, self.public_url)
        except BrokenProcessPool as exc:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.start()
            raise RendererUnavailable("a render worker died; the pool was restarted") from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
