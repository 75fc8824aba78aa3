"""The ``bulletin`` channel: print one notice per village (or town) on that office's printer through CUPS.

A message's ``recipient`` is an area code (12-digit village or 9-digit town code, GB/T 10114 / NBS).
The adapter renders the notice to PDF off the event loop (``channels.bulletin_render``, a process
pool), then submits it with IPP Print-Job to the CUPS queue configured for that area, or writes it to
the spool folder when the area has no printer. A printout reaches a village, not a resident: the
engine and its reports count it apart from personal deliveries.

Configuration (``[channels.<alias>]``, see ``BulletinOptions``)::

    [channels.board]
    kind = "bulletin"
    type = "bulletin"
    public_url = "https://notify.example.gov.cn"     # the QR code opens {public_url}/subscribe?area=..&topic=..
    county_name = "昌乐县"                              # header: 昌乐县人民政府 公告
    divisions_csv = "notifier/demo/data/changle-divisions.csv"   # code,name,level,parent: names on the printout
    spool_dir = "spool/bulletin"                     # areas without a printer: <spool_dir>/<area>/n<id>-d<id>.pdf
    print_for_towns = false                          # the engine queues one printout per village; true: per town too
    printers."370725001036" = "ipp://127.0.0.1:631/printers/HENGSHENG"
    printers."370725107" = { uri = "ipp://10.1.2.3:631/printers/QIAOGUAN", paper = "A3", copies = 2 }

What a message carries: ``subject`` is the title. ``text`` is the body, optionally preceded by a
header block of ``Key: value`` lines and one blank line (rendered once at enqueue time, so a retry
prints the identical notice)::

    Severity: severe            info | minor | moderate | severe | extreme (colour band; default info)
    Topic: air-quality          topic code for the QR link (default: none, the link presets the area only)
    Department: 潍坊市生态环境局昌乐分局     issuing department (default: option department_name)
    Issued: 2026-11-30T16:00:00+08:00       date printed at the bottom (default: today)
    Publicity: {"headers": [...], "rows": [[...]], "from": "2026-12-01", "until": "2026-12-07",
               "complaint_phone": "0536-1234567"}   a publicity list (公示), one JSON line, cells masked by the
                                                    engine: printed landscape, paginated, header on every page

IPP (RFC 8011, https://www.rfc-editor.org/rfc/rfc8011 ; CUPS implementation notes
https://www.cups.org/doc/spec-ipp.html) through pyipp. Response table:

    Print-Job accepted (status < 0x0400)                        -> Sent("<queue uri>#<job-id>")
    connection refused, timeout, HTTP 5xx/429/408, unparsable reply, an answer cut off -> Retry
    accepted without a job-id (or one that is not a positive    -> Retry (UNRECOGNISED: it may have been taken)
      integer, as RFC 8011 5.3.2 has it: text, a boolean, 0)
    IPP 0x0500..0x05FF (printer stopped, not accepting, busy)   -> Retry
    IPP 0x0400..0x04FF (no such queue, format refused, ...), HTTP 4xx -> Failed("job-rejected")
    no printer configured, PDF written to the spool folder      -> Sent("spool:<path>"); OSError (a full disk)
                                                                   -> Retry, no partial file left
    bad area code -> Failed("invalid-area"); template or layout error -> Failed("render-failed")

``poll_job(provider_message_id)`` reads the job with Get-Job-Attributes: job-state 9 (completed) ->
"completed", 7 (canceled) or 8 (aborted) -> "failed", anything else, an unreachable CUPS or a job CUPS no
longer remembers -> "pending". A spooled file counts as completed once it exists.

pyipp drops attributes missing from its tag map without a word; ``open`` checks the ones used here.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyipp import IPP
from pyipp.enums import IppOperation
from pyipp.exceptions import IPPConnectionError, IPPError, IPPParseError, IPPResponseError
from pyipp.tags import ATTRIBUTE_TAG_MAP

from channels.base import Channel, ChannelOptions, Failed, OutboundMessage, Retry, SendResult, Sent
from channels.bulletin_render import BulletinNotice, BulletinRenderer, Paper, PublicityTable, RendererUnavailable
from channels.http import UNRECOGNISED

log = logging.getLogger(__name__)

AREA_CODE = re.compile(r"[0-9]{9}|[0-9]{12}")
HEADER_LINE = re.compile(r"(Severity|Topic|Department|Issued|Publicity):[ \t]*(.*)", re.IGNORECASE)
SEVERITIES = {"info", "minor", "moderate", "severe", "extreme"}
IPP_ATTRIBUTES = ("requesting-user-name", "job-name", "document-format", "copies", "job-id", "requested-attributes")
JOB_COMPLETED, JOB_CANCELED, JOB_ABORTED = 9, 7, 8
# pyipp sends "en-US", but IPP takes naturalLanguage values in lower case only (RFC 2911 4.1.8), and cupsd
# 2.4.2-3+deb12u10 (a Debian security update) refuses such a request: 'Bad "attributes-natural-language" value
# 'en-US'', client-error-bad-request, so every printout failed as job-rejected
NATURAL_LANGUAGE = "en-us"
PollState = Literal["completed", "pending", "failed"]


class PrinterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(description="CUPS queue, ipp://host:631/printers/NAME")
    paper: Paper | None = Field(None, description="A4 or A3; default: the channel's paper")
    copies: int = Field(1, ge=1, le=20)

    @field_validator("uri")
    @classmethod
    def _ipp(cls, value: str) -> str:
        if not re.fullmatch(r"ipps?://[^/\s]+/\S+", value):
            raise ValueError("expected ipp://host:port/printers/NAME")
        return value


class BulletinOptions(ChannelOptions):
    public_url: str = Field(description="base of the QR code's subscription link")
    county_name: str = Field(description="county printed in the header, e.g. 昌乐县")
    department_name: str | None = Field(None, description="issuer when a message names none")
    printers: dict[str, PrinterOptions] = Field(default_factory=dict, description="area code -> CUPS queue")
    spool_dir: str = "spool/bulletin"
    divisions_csv: str | None = Field(None, description="code,name,level,parent: area names for the printout")
    paper: Paper = "A4"
    user_name: str = Field("notifier", description="IPP requesting-user-name")
    timeout: float = Field(15, gt=0, description="seconds per IPP request")
    render_workers: int | None = Field(None, ge=1, le=32)
    timezone: str = "Asia/Shanghai"
    print_for_towns: bool = Field(False, description="also print one notice for the town office of a targeted town")

    @field_validator("printers", mode="before")
    @classmethod
    def _plain_uri(cls, value: object) -> object:
        if isinstance(value, dict):
            return {code: {"uri": p} if isinstance(p, str) else p for code, p in value.items()}
        return value

    @field_validator("printers")
    @classmethod
    def _codes(cls, value: dict[str, PrinterOptions]) -> dict[str, PrinterOptions]:
        for code in value:
            if not AREA_CODE.fullmatch(code):
                raise ValueError(f"{code!r} is not a 9-digit town or 12-digit village code")
        return value


def split_header(text: str) -> tuple[dict[str, str], str]:
    """``({"severity": ..., ...}, body)``; text without a valid header block is all body."""
    head, sep, rest = text.partition("\n\n")
    lines = [line for line in head.splitlines() if line.strip()]
    matches = [HEADER_LINE.fullmatch(line.strip()) for line in lines]
    if not sep or not lines or not all(matches):
        return {}, text.strip()
    return {m.group(1).lower(): m.group(2).strip() for m in matches if m}, rest.strip()


def read_area_names(path: str) -> dict[str, str]:
    """Printable names from a divisions CSV: a village reads "<town> <village>", a town its own name."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = {row["code"]: row for row in csv.DictReader(handle)}
    names = {}
    for code, row in rows.items():
        parent = rows.get(row.get("parent") or "")
        names[code] = f"{parent['name']} {row['name']}" if len(code) == 12 and parent else row["name"]
    return names


class BulletinChannel(Channel):
    Options = BulletinOptions
    max_batch = 20

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        super().__init__(alias, options)
        assert isinstance(self.options, BulletinOptions)
        self.settings: BulletinOptions = self.options
        self.renderer = BulletinRenderer(self.settings.public_url, self.settings.render_workers)
        self.area_names: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        missing = [name for name in IPP_ATTRIBUTES if name not in ATTRIBUTE_TAG_MAP]
        if missing:
            raise RuntimeError(f"this pyipp would silently drop IPP attributes {missing}; use pyipp 0.17")
        if self.settings.divisions_csv:
            self.area_names = await asyncio.to_thread(read_area_names, self.settings.divisions_csv)
        self.renderer.start()
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.to_thread(self.renderer.close)

    def use_area_names(self, names: Mapping[str, str]) -> None:
        """Names from the service's area tree; a ``divisions_csv`` file, if configured, still wins."""
        self.area_names = {**names, **self.area_names}

    def area_levels(self) -> frozenset[str]:
        """One printout per targeted village, and per town with ``print_for_towns``."""
        return frozenset({"town", "village"} if self.settings.print_for_towns else {"village"})

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        return list(await asyncio.gather(*(self._send_one(message) for message in batch)))

    def notice(self, message: OutboundMessage) -> BulletinNotice:
        """The printable notice a message describes (see the module docstring for the header block)."""
        header, body = split_header(message.text)
        zone = ZoneInfo(self.settings.timezone)
        issued = datetime.fromisoformat(header["issued"]) if header.get("issued") else datetime.now(zone)
        severity = header.get("severity", "info").lower()
        printer = self.settings.printers.get(message.recipient)
        return BulletinNotice(
            title=message.subject or "",
            body=body,
            department_name=header.get("department") or self.settings.department_name or "",
            issued_at=issued.astimezone(zone) if issued.tzinfo else issued,
            severity=severity if severity in SEVERITIES else "info",
            area_code=message.recipient,
            area_name=self.area_names.get(message.recipient, message.recipient),
            county_name=self.settings.county_name,
            topic=header.get("topic", ""),
            paper=(printer.paper if printer and printer.paper else self.settings.paper),
            table=PublicityTable.from_header(header["publicity"]) if header.get("publicity") else None,
            notice_id=message.notice_id,
        )

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        if not AREA_CODE.fullmatch(message.recipient):
            return Failed("invalid-area", "recipient must be a 9-digit town or 12-digit village code")
        try:
            notice = self.notice(message)
        except ValueError as exc:
            return Failed("render-failed", f"bad header: {exc}")
        if not notice.title or not notice.department_name:
            return Failed("render-failed", "a printout needs a title (subject) and an issuing department")
        try:
            pdf = await self.renderer.render(notice)
        except RendererUnavailable as exc:
            return Retry(str(exc))
        except Exception as exc:
            log.exception("bulletin delivery %s: rendering failed", message.delivery_id)
            return Failed("render-failed", type(exc).__name__)
        printer = self.settings.printers.get(message.recipient)
        if printer is None:
            return await self._spool(message, pdf)
        return await self._print(printer, message, pdf)

    async def _spool(self, message: OutboundMessage, pdf: bytes) -> SendResult:
        path = Path(self.settings.spool_dir) / message.recipient / f"n{message.notice_id}-d{message.delivery_id}.pdf"
        try:
            await asyncio.to_thread(_write_atomically, path, pdf)
        except OSError as exc:
            return Retry(f"spool write failed: {exc.strerror or exc}")
        return Sent(f"spool:{path}")

    async def _print(self, printer: PrinterOptions, message: OutboundMessage, pdf: bytes) -> SendResult:
        request = {
            "operation-attributes-tag": {
                "attributes-natural-language": NATURAL_LANGUAGE,
                "requesting-user-name": self.settings.user_name,
                "job-name": f"notice-{message.notice_id}-{message.recipient}",
                "document-format": "application/pdf",
            },
            "job-attributes-tag": {"copies": printer.copies},
            "data": pdf,
        }
        try:
            response = await self._ipp(printer.uri).execute(IppOperation.PRINT_JOB, request)
        except IPPConnectionError:
            return Retry("print server unreachable")
        except IPPResponseError as exc:
            status = _detail(exc).get("status-code", 500)
            if status >= 500 or status in (408, 429):
                return Retry(f"print server answered HTTP {status}")
            return Failed("job-rejected", f"HTTP {status}")
        except IPPParseError:
            return Retry("unreadable IPP response")
        except IPPError as exc:
            status = _detail(exc).get("status-code", 0)
            if 0x0500 <= status <= 0x05FF:
                return Retry(f"printer not accepting jobs (IPP status 0x{status:04x})")
            return Failed("job-rejected", f"IPP status 0x{status:04x}")
        except UnicodeDecodeError:  # pyipp reads an HTTP error page as UTF-8 (a proxy's GBK page is not)
            return Retry("print server answered an HTTP error")
        except (aiohttp.ClientError, TimeoutError):  # pyipp reads the answer's body outside its own error handling
            return Retry("the print server's answer was cut off: it may have taken the job")
        jobs = response.get("jobs")
        job_id = jobs[0].get("job-id") if jobs and isinstance(jobs[0], dict) else None
        if not isinstance(job_id, int) or isinstance(job_id, bool) or job_id < 1:
            return Retry(UNRECOGNISED)  # no job to poll: poll_job reads the job-id back as an integer
        log.info("bulletin delivery %s printing as job %s on %s", message.delivery_id, job_id, printer.uri)
        return Sent(f"{printer.uri}#{job_id}")

    async def poll_job(self, provider_message_id: str) -> PollState:
        """State of a printout: "completed" (job-state 9), "failed" (7 or 8) or "pending"."""
        if provider_message_id.startswith("spool:"):
            exists = await asyncio.to_thread(Path(provider_message_id.removeprefix("spool:")).is_file)
            return "completed" if exists else "failed"
        uri, _, job_id = provider_message_id.rpartition("#")
        request = {
            "operation-attributes-tag": {
                "attributes-natural-language": NATURAL_LANGUAGE,
                "job-id": int(job_id),
                "requesting-user-name": self.settings.user_name,
                "requested-attributes": ["job-state"],
            }
        }
        try:
            response = await self._ipp(uri).execute(IppOperation.GET_JOB_ATTRIBUTES, request)
        except (IPPError, aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
            return "pending"  # unreachable, an answer cut off or unreadable, a job purged from the history: ask later
        state = response["jobs"][0].get("job-state") if response.get("jobs") else None
        if state == JOB_COMPLETED:
            return "completed"
        return "failed" if state in (JOB_CANCELED, JOB_ABORTED) else "pending"

    def _ipp(self, uri: str) -> IPP:
        if self._session is None:
            raise RuntimeError("BulletinChannel.open() was not called")
        return IPP(uri, session=self._session, request_timeout=self.settings.timeout)  # type: ignore[arg-type]


def _detail(exc: IPPError) -> dict[str, int]:
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}


def _write_atomically(path: Path, data: bytes) -> None:
    """The whole file or none: a write cut short (a full disk) leaves no partial file to take up the room."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
