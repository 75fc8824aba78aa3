"""The SMS bill of a notice before approval: what each SMS gateway would receive and bill for the audience.

A gateway does not bill the rendered text: each SMS alias puts its 【signature】 in front and its opt-out
wording at the end (a cloud platform adds the signature itself). ``Channel.gateway_text`` is the one
function that does this, and the adapters send exactly what it returns, so the parts counted here are
the parts the gateway receives. The fan-out hands every SMS delivery to the first SMS alias (through a
failover alias, to its first member); the aliases after it carry a message only when the one before
cannot, so they are listed with their own parts per message and no deliveries of their own, and
``billable_parts_at_most`` is the bill if every message went through the costliest of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from channels.base import Channel
from channels.sms_text import count_segments
from notifier.config import Settings
from notifier.domain.models import Notice
from notifier.engine.context import aliases_of
from notifier.engine.render import DEFAULT_TEMPLATE, Renderer, RenderError
from notifier.engine.render_threads import rendered
from notifier.store import Store


class SmsRoute(BaseModel):
    alias: str = Field(description="the SMS alias (a member of a failover alias is listed by its own name)")
    role: Literal["primary", "backup"] = Field(
        description="primary: the fan-out gives it every SMS delivery; backup: sends only when those before fail"
    )
    chars: int = Field(description="characters of the text this gateway receives, signature and opt-out included")
    encoding: Literal["gsm7", "ucs2"] = Field(description="GSM 7-bit (160/153 per part) or UCS-2 (70/67 per part)")
    parts_per_message: int = Field(description="SMS parts each resident's message is billed as")
    deliveries: int = Field(description="SMS deliveries this alias carries when every gateway works")
    billable_parts: int = Field(description="deliveries x parts_per_message")


class SmsBill(BaseModel):
    deliveries: int = Field(description="SMS deliveries the notice produces")
    billable_parts: int = Field(description="parts billed when every message goes through its primary alias")
    billable_parts_at_most: int = Field(description="parts billed if every message went through the costliest alias")
    aliases: list[SmsRoute] = Field(description="per SMS alias, in the order the engine tries them")


def sms_routes(settings: Settings, channels: Mapping[str, Channel]) -> list[str]:
    """The aliases that send SMS, in the order the engine tries them, failover aliases opened up."""
    routes: list[str] = []
    for alias in aliases_of(settings, channels, "sms"):
        members = [m for m in channels[alias].member_aliases() if m in channels]
        routes.extend(members or [alias])
    return routes


def sms_bill(
    text: str, deliveries: int, settings: Settings, channels: Mapping[str, Channel], *, confirm: bool = False
) -> SmsBill | None:
    """The bill for ``deliveries`` SMS messages of the rendered ``text`` (with each alias's confirm wording when
    the notice asks for confirmation); None when no alias sends SMS."""
    routes: list[SmsRoute] = []
    for position, alias in enumerate(sms_routes(settings, channels)):
        info = count_segments(channels[alias].gateway_text(text, confirm))
        carried = deliveries if position == 0 else 0
        routes.append(
            SmsRoute(
                alias=alias,
                role="primary" if position == 0 else "backup",
                chars=info.chars,
                encoding=info.encoding,
                parts_per_message=info.segments,
                deliveries=carried,
                billable_parts=carried * info.segments,
            )
        )
    if not routes:
        return None
    return SmsBill(
        deliveries=deliveries,
        billable_parts=sum(route.billable_parts for route in routes),
        billable_parts_at_most=deliveries * max(route.parts_per_message for route in routes),
        aliases=routes,
    )


async def sms_text(store: Store, notice: Notice, settings: Settings, renderer: Renderer) -> str | None:
    """The notice's SMS text in the fallback language as the fan-out would render it now; None when it does
    not render.

    ``issued_at`` (the approval time) is not known yet: the current time stands in, of the same length.
    """
    department = await store.get_department(notice.department)
    issued_at = datetime.now(ZoneInfo(settings.server.timezone)).isoformat(timespec="seconds")
    context = renderer.context(notice.model_dump(mode="json"), department.name, issued_at=issued_at)
    version = await store.template_version(notice.template or DEFAULT_TEMPLATE, notice.template_version)
    if version is None:
        return None
    try:
        return (await rendered(renderer.render, version, "sms", context))["text"]
    except RenderError:
        return None


__all__ = ["SmsBill", "SmsRoute", "sms_bill", "sms_routes", "sms_text"]
