"""What each channel would carry for a notice, before it exists: the message per channel kind, as its provider
receives it.

Nothing here decides anything of its own: the text is the fan-out's render (``Renderer.render``, the
same context, the current time standing in for the approval time), each alias composes its own text
(``Channel.gateway_text``: an SMS gateway's 【signature】 and opt-out wording), a WeChat alias names its
template keywords (``data_values``), and the printout is the bulletin adapter's own ``notice`` laid out by
``channels.bulletin_render`` for the first village the engine's area plan would print for, its first page
turned into a PNG image by ``pdftoppm`` (poppler-utils). The image is CPU work: the PDF is rendered in the
adapter's process pool when the engine runs (else in a thread) and ``pdftoppm`` runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from channels.base import Channel, OutboundMessage
from channels.bulletin_cups import BulletinChannel
from channels.bulletin_render import BulletinNotice, RendererUnavailable, render_html, render_pdf
from channels.sms_text import count_segments
from channels.wechat_official import WechatAccountChannel
from notifier.config import Settings
from notifier.domain.models import Notice, NoticeIn
from notifier.engine.context import aliases_of
from notifier.engine.notice_render import render_kinds
from notifier.engine.render import DEFAULT_TEMPLATE, Renderer, RenderError
from notifier.engine.render_threads import rendered
from notifier.engine.sms_bill import sms_routes
from notifier.store import Store

PNG_DPI = 60  # an A4 page becomes 496 x 702 pixels: readable on a phone, small enough to send while typing
PDFTOPPM_SECONDS = 30.0


class SmsText(BaseModel):
    alias: str
    role: Literal["primary", "backup"]
    text: str = Field(description="exactly what this gateway receives: signature and opt-out wording included")
    chars: int
    encoding: Literal["gsm7", "ucs2"]
    parts_per_message: int


class Printout(BaseModel):
    alias: str
    area_code: str = Field(description="the first village (or town) the notice would be printed for")
    area_name: str
    paper: str
    title: str
    severity: str
    department_name: str
    body: str
    png_base64: str | None = Field(
        None, description="page 1 of the printout as a PNG image, base64; only when the image was asked for"
    )


class ChannelMessage(BaseModel):
    kind: str
    alias: str | None = Field(description="the alias that carries it first; null when no alias serves the kind")
    subject: str | None
    text: str = Field(description="the text the first alias's provider receives")
    html: str | None = Field(None, description="the e-mail's HTML part")
    sms: list[SmsText] | None = Field(None, description="SMS: the text each gateway receives, in the order tried")
    fields: dict[str, str] | None = Field(None, description="WeChat template keywords and their values")
    printout: Printout | None = Field(None, description="bulletin: the printout of the first village")


async def render_draft(
    store: Store, notice: Notice | NoticeIn, department: str, renderer: Renderer, settings: Settings, kinds: list[str]
) -> dict[str, dict[str, str | None]]:
    """The fan-out's render of every kind in ``kinds`` in the fallback language, with the template version a
    stored notice recorded (the latest for a draft); RenderError when the template is missing or fails."""
    template = notice.template or DEFAULT_TEMPLATE
    version = await store.template_version(template, notice.template_version if isinstance(notice, Notice) else None)
    if version is None:
        raise RenderError(f"no template named {template}")
    name = (await store.get_department(department)).name
    issued_at = datetime.now(ZoneInfo(settings.server.timezone)).isoformat(timespec="seconds")
    context = renderer.context({**notice.model_dump(mode="json"), "department": department}, name, issued_at=issued_at)
    return await rendered(render_kinds, renderer, version, kinds, context)


def channel_message(
    kind: str,
    rendered: Mapping[str, str | None],
    settings: Settings,
    channels: Mapping[str, Channel],
    *,
    confirm: bool = False,
) -> ChannelMessage:
    """One kind's message as its first alias would send it (bulletin: without the printout, see ``printout``)."""
    text = rendered.get("text") or ""
    subject = rendered.get("subject")
    aliases = aliases_of(settings, channels, kind)
    alias = aliases[0] if aliases else None
    message = ChannelMessage(kind=kind, alias=alias, subject=subject, text=text, html=rendered.get("html"))
    if kind == "sms":
        message.sms = sms_texts(text, settings, channels, confirm=confirm)
        if message.sms:
            message.alias, message.text = message.sms[0].alias, message.sms[0].text
        return message
    if alias is None:
        return message
    adapter = channels[alias]
    message.text = adapter.gateway_text(text)
    if isinstance(adapter, WechatAccountChannel):
        message.fields = adapter.data_values(sample_message(kind, alias, "", text, subject))
    return message


def sms_texts(
    text: str, settings: Settings, channels: Mapping[str, Channel], *, confirm: bool = False
) -> list[SmsText]:
    """The text each SMS gateway receives, in the order the engine tries them (as ``sms_bill`` counts it)."""
    found = []
    for position, alias in enumerate(sms_routes(settings, channels)):
        sent = channels[alias].gateway_text(text, confirm)
        info = count_segments(sent)
        role: Literal["primary", "backup"] = "primary" if position == 0 else "backup"
        found.append(SmsText(alias=alias, role=role, text=sent, chars=info.chars, encoding=info.encoding,
                             parts_per_message=info.segments))  # fmt: skip
    return found


def sample_message(kind: str, alias: str, recipient: str, text: str, subject: str | None) -> OutboundMessage:
    """The message an adapter would be handed, with no delivery behind it (ids 0)."""
    return OutboundMessage(delivery_id=0, notice_id=0, channel=kind, alias=alias, recipient=recipient, text=text,
                           idempotency_key=f"n0-{kind}-preview", subject=subject)  # fmt: skip


def printout_notice(
    adapter: BulletinChannel, alias: str, area_code: str, area_name: str, rendered: Mapping[str, str | None]
) -> BulletinNotice:
    """The printable notice the bulletin adapter would lay out for ``area_code``."""
    message = sample_message("bulletin", alias, area_code, rendered.get("text") or "", rendered.get("subject"))
    notice = adapter.notice(message)
    return notice if notice.area_name != area_code else replace(notice, area_name=area_name)


def printout_model(alias: str, notice: BulletinNotice, png: bytes | None) -> Printout:
    return Printout(
        alias=alias,
        area_code=notice.area_code,
        area_name=notice.area_name,
        paper=notice.paper,
        title=notice.title,
        severity=notice.severity,
        department_name=notice.department_name,
        body=notice.body,
        png_base64=None if png is None else base64.b64encode(png).decode("ascii"),
    )


class PrintoutImages:
    """Page 1 of printouts as PNG images, the last few kept by their HTML, so that typing elsewhere in the form
    does not lay the same printout out again."""

    def __init__(self, kept: int = 16) -> None:
        self.kept = kept
        self._images: OrderedDict[str, bytes] = OrderedDict()

    async def png(self, adapter: BulletinChannel, notice: BulletinNotice) -> bytes:
        html = render_html(notice, adapter.settings.public_url)
        key = hashlib.sha256(f"{notice.paper}\n{html}".encode()).hexdigest()
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        try:
            pdf = await adapter.renderer.render(notice)
        except RendererUnavailable:  # no engine in this process: the adapter's pool was never started
            pdf = await asyncio.to_thread(render_pdf, notice, adapter.settings.public_url)
        image = await first_page_png(pdf)
        self._images[key] = image
        while len(self._images) > self.kept:
            self._images.popitem(last=False)
        return image


class PrintoutImageError(Exception):
    """pdftoppm is missing or failed."""


async def first_page_png(pdf: bytes, dpi: int = PNG_DPI) -> bytes:
    """Page 1 of a PDF as PNG bytes, by ``pdftoppm`` reading the PDF from standard input."""
    try:
        process = await asyncio.create_subprocess_exec(
            "pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", "-",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise PrintoutImageError("pdftoppm is not installed (Debian package poppler-utils)") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(pdf), PDFTOPPM_SECONDS)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise PrintoutImageError("pdftoppm took too long") from exc
    if process.returncode != 0 or not out.startswith(b"\x89PNG"):
        raise PrintoutImageError(f"pdftoppm failed ({process.returncode}): {err.decode(errors='replace')[:200]}")
    return out


__all__ = [
    "ChannelMessage",
    "Printout",
    "PrintoutImageError",
    "PrintoutImages",
    "SmsText",
    "channel_message",
    "first_page_png",
    "printout_model",
    "printout_notice",
    "render_draft",
    "sms_texts",
]
