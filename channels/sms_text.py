"""What every SMS must carry, and how many parts it costs.

Chinese domestic SMS must begin with the sender's signature in 【】 (``【昌乐县政府】``), registered with
the carrier or the cloud provider without the brackets; marketing-type messages must also end with an
opt-out wording (``回TD退订``, ``拒收请回复R``; each provider prescribes its own). Both are options of
every SMS channel (``signature``, ``unsubscribe_text``) and ``compose`` applies them once: a text that
already carries them is left alone, so a re-send or an already-signed template is not signed twice.

Segment counting (3GPP TS 23.038 / 23.040): a message fits 140 octets. When every character is in the
GSM 03.38 alphabet it is sent as 7-bit: 160 characters in one SMS, 153 per part when concatenated, the
extension characters ``^{}\\[~]|€`` (and form feed) costing two. Any other character (any Chinese
character) makes the whole message UCS-2: 70 UTF-16 code units in one SMS, 67 per part; a character
outside the BMP (an emoji) costs two units. A 7-bit escape pair or a surrogate pair is never split
across parts. Chinese carriers bill by the same 70/67 rule, counting the signature with its brackets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator

from channels.base import ChannelOptions, Failed

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
_GSM7_COST = {**dict.fromkeys(GSM7_BASIC, 1), **dict.fromkeys(GSM7_EXTENSION, 2)}

Encoding = Literal["gsm7", "ucs2"]
LIMITS: dict[str, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}  # single, per concatenated part


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Encoding
    segments: int  # SMS parts the text is split into (1 for an empty text)
    chars: int  # characters (code points), what Chinese carriers count for billing
    units: int  # 7-bit septets or UTF-16 code units actually encoded


_GSM7 = frozenset(_GSM7_COST)
_DOUBLE: dict[Encoding, re.Pattern[str]] = {  # characters that cost two units: an escape pair, a surrogate pair
    "gsm7": re.compile(f"[{re.escape(GSM7_EXTENSION)}]"),
    "ucs2": re.compile("[\U00010000-\U0010ffff]"),
}


@lru_cache(maxsize=256)
def count_segments(text: str) -> SegmentInfo:
    """The encoding an SMS gateway will pick for ``text`` and the number of parts it needs.

    Cached: a notice's text is counted once, not once per resident.
    """
    encoding: Encoding = "gsm7" if _GSM7.issuperset(text) else "ucs2"
    single, per_part = LIMITS[encoding]
    double = _DOUBLE[encoding]
    doubles = len(double.findall(text))
    units = len(text) + doubles
    if units <= single:
        return SegmentInfo(encoding, 1, len(text), units)
    if not doubles:
        return SegmentInfo(encoding, -(-units // per_part), len(text), units)
    segments, used = 1, 0
    for char in text:  # fill parts without splitting an escape pair or a surrogate pair
        cost = 2 if double.match(char) else 1
        if used + cost > per_part:
            segments, used = segments + 1, 0
        used += cost
    return SegmentInfo(encoding, segments, len(text), units)


class ConfirmTextOptions(ChannelOptions):
    """The confirmation wording of an SMS channel: a notice that asks for confirmation ends with
    ``confirm_text``, and a reply of ``confirm_word`` (NFKC, trimmed, any case) confirms it."""

    confirm_word: str = Field("1", min_length=1, max_length=8, description="the reply that confirms, e.g. 1")
    confirm_text: str = Field(
        "回复1确认收到", min_length=1, max_length=30, description="appended to a notice asking for confirmation"
    )

    @model_validator(mode="after")
    def _word_in_text(self) -> ConfirmTextOptions:
        if self.confirm_word.strip().casefold() in {"td", "t", "n", "r", "退订"}:
            raise ValueError("confirm_word must not be an opt-out word (TD, T, N, R, 退订)")
        if self.confirm_word not in self.confirm_text:
            raise ValueError("confirm_text must name confirm_word, e.g. 回复1确认收到")
        return self


class SmsTextOptions(ConfirmTextOptions):
    """Options of every SMS channel, mixed into the adapter's own options."""

    signature: str | None = Field(None, description="sender signature without brackets, e.g. 昌乐县政府")
    unsubscribe_text: str | None = Field(None, description="opt-out wording appended to every SMS, e.g. 回TD退订")
    max_segments: int = Field(10, ge=1, le=255, description="longer messages fail with too-long instead of sending")

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bare = value.strip().removeprefix("【").removesuffix("】").strip()
        if not 2 <= len(bare) <= 16 or any(c in bare for c in "【】[] \t\r\n"):
            raise ValueError("a signature has 2-16 characters, no brackets or spaces, e.g. 昌乐县政府")
        return bare

    @field_validator("unsubscribe_text")
    @classmethod
    def _unsubscribe(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("leave unsubscribe_text out instead of setting it empty")
        return value


def compose(
    text: str, signature: str | None = None, unsubscribe_text: str | None = None, confirm_text: str | None = None
) -> str:
    """``text`` with the 【signature】 in front and the opt-out wording at the end, each added at most once;
    with ``confirm_text`` (a notice asking for confirmation) that wording ends the message."""
    body = text.strip()
    if confirm_text:
        body = body.removesuffix(confirm_text)
    if signature:
        prefix = f"【{signature}】"
        if not body.startswith(prefix):
            body = prefix + body
    if unsubscribe_text and not body.endswith(unsubscribe_text):
        body = body + unsubscribe_text
    if confirm_text:
        body = body + confirm_text
    return body


def compose_with(options: SmsTextOptions, text: str, confirm: bool = False) -> str:
    """``compose`` with an SMS channel's own signature, opt-out wording and (``confirm``) confirm wording."""
    return compose(text, options.signature, options.unsubscribe_text, options.confirm_text if confirm else None)


def within_limit(final: str, max_segments: int) -> str | Failed:
    """``final`` (the text as the gateway receives it), or Failed("too-long") when it needs more parts."""
    info = count_segments(final)
    if info.segments > max_segments:
        return Failed("too-long", f"{info.chars} characters need {info.segments} parts (max {max_segments})")
    return final


def prepare(text: str, options: SmsTextOptions) -> str | Failed:
    """The text to hand to the gateway, or Failed("too-long") when it needs more than max_segments parts."""
    return within_limit(compose_with(options, text), options.max_segments)


def platform_signed(text: str, sign_name: str) -> str:
    """What a cloud SMS platform sends for a template whose whole text is our one parameter: 【sign_name】
    in front of the parameter (``template_parameter``), which is what the platform bills."""
    return f"【{sign_name}】{template_parameter(text, sign_name)}"


def with_confirm_text(text: str, options: ConfirmTextOptions, confirm: bool) -> str:
    """A cloud platform's template parameter with the confirm wording at its end when ``confirm``."""
    return text.removesuffix(options.confirm_text) + options.confirm_text if confirm else text


def template_parameter(text: str, sign_name: str) -> str:
    """The rendered text as a cloud platform's template parameter: a leading 【sign_name】 is dropped,
    since the platform adds the signature itself."""
    return text.removeprefix(f"【{sign_name}】")


__all__ = [
    "ConfirmTextOptions",
    "SegmentInfo",
    "SmsTextOptions",
    "compose",
    "compose_with",
    "count_segments",
    "platform_signed",
    "prepare",
    "template_parameter",
    "with_confirm_text",
    "within_limit",
]
