"""Preview a notice that is not created yet: its audience per town and its message per channel.

``POST /api/v1/notice-preview`` takes the body ``POST /api/v1/notices`` takes and answers what that notice
would produce, with the same refusals (topic and target outside the department: 403; a template that does
not render with the data: 422 naming the field). Nothing is written. The staff console's compose page calls
``draft_preview`` directly while the clerk types.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from channels.bulletin_cups import BulletinChannel
from notifier.api.auth import actor, require
from notifier.api.keys import SETTINGS, STORE
from notifier.api.notices import (
    Preview,
    notice_renderer,
    planned_area_deliveries,
    planning_context,
)
from notifier.api.routing import Route, json_response, read_body, read_query
from notifier.domain.enums import ChannelKind, Role
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import ApiKeyInfo, Notice, NoticeIn
from notifier.engine import check_renders, preview
from notifier.engine.message_preview import (
    ChannelMessage,
    PrintoutImageError,
    PrintoutImages,
    channel_message,
    printout_model,
    printout_notice,
    render_draft,
)
from notifier.engine.personal_preview import personal_preview
from notifier.engine.render import RenderError
from notifier.engine.sms_bill import sms_bill
from notifier.policy import check_new_notice

log = logging.getLogger(__name__)

PRINTOUT_IMAGES = web.AppKey("printout_images", PrintoutImages)


class DraftPreviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    printout: bool = Field(
        False, description="true adds page 1 of the first village's notice-board printout as a PNG image (slower)"
    )


class DraftPreview(Preview):
    messages: dict[str, ChannelMessage] = Field(
        description="per channel kind of the notice: the message as its first alias's provider receives it"
    )
    printout_error: str | None = Field(None, description="why the printout image could not be made, if it could not")


async def draft_preview(
    request: web.Request, key: ApiKeyInfo, notice: NoticeIn | Notice, *, printout: bool = False,
    by: str | None = None,
) -> DraftPreview:
    """What ``notice`` would produce if ``key`` created it now: the checks of ``POST /notices`` first (Forbidden,
    InvalidInput), then the audience (the fan-out's own queries), the SMS bill, the area deliveries and the
    message per channel kind. ``by`` names who asks in the audit log (default: the key)."""
    store, settings = request.app[STORE], request.app[SETTINGS]
    renderer = notice_renderer(request)
    if isinstance(notice, NoticeIn):  # a stored notice passed these checks when it was created
        await check_new_notice(store, key, notice)
        await check_renders(store, notice, key.department, renderer)
    served = sorted({config.kind.value for config in settings.channels.values()})
    figures = await preview(store, notice, served=served, timezone=settings.server.timezone)
    context = await planning_context(request)
    kinds = [kind.value for kind in notice.channels]
    try:
        rendered = await render_draft(store, notice, key.department, renderer, settings, kinds)
    except RenderError as exc:  # a stored notice whose template changed since
        raise InvalidInput(f"the notice does not render: {exc}", [FieldError("template", str(exc))]) from None
    confirm = notice.confirmation is not None
    messages = {kind: channel_message(kind, rendered[kind], settings, context.channels, confirm=confirm)
                for kind in kinds}
    bill = None
    if ChannelKind.SMS in notice.channels:
        bill = sms_bill(rendered["sms"]["text"] or "", figures["deliveries"].get("sms", 0), settings, context.channels,
                        confirm=confirm)
    areas: dict[str, int] = {}
    first_printed: dict[str, str] | None = None
    for row in await planned_area_deliveries(request, notice):
        areas[row["channel"]] = areas.get(row["channel"], 0) + 1
        if row["channel"] == "bulletin" and first_printed is None:
            first_printed = row
    error = None
    if first_printed is not None and "bulletin" in messages:
        error = await _add_printout(request, messages["bulletin"], first_printed, rendered["bulletin"], printout)
    segments = bill.aliases[0].parts_per_message if bill is not None else None
    personal = await personal_preview(store, notice, settings, renderer, context.channels, actor=by or actor(key),
                                      department_code=key.department)  # fmt: skip
    return DraftPreview(
        **figures, sms_segments=segments, sms=bill, areas=areas, messages=messages, printout_error=error,
        personal=personal,
    )


async def _add_printout(
    request: web.Request, message: ChannelMessage, row: dict[str, str], rendered: dict[str, str | None], image: bool
) -> str | None:
    """Put the first village's printout on the bulletin message; the image too when asked. The reason when the
    image could not be made (pdftoppm missing), else None."""
    adapter = (await planning_context(request)).channels.get(row["alias"])
    if not isinstance(adapter, BulletinChannel):
        return None  # an outbox standing in for the boards: its text is the message
    names = await request.app[STORE].printable_area_names()
    code = row["area_code"]
    laid_out = printout_notice(adapter, row["alias"], code, names.get(code, code), rendered)
    png = None
    if image:
        try:
            png = await request.app[PRINTOUT_IMAGES].png(adapter, laid_out)
        except PrintoutImageError as exc:
            log.warning("printout preview image not made: %s", exc)
            message.printout = printout_model(row["alias"], laid_out, None)
            return str(exc)
    message.printout = printout_model(row["alias"], laid_out, png)
    return None


async def preview_draft(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    query = read_query(request, DraftPreviewQuery)
    notice = await read_body(request, NoticeIn)
    return json_response(await draft_preview(request, key, notice, printout=query.printout))


ROUTES = [
    Route(
        "POST",
        "/api/v1/notice-preview",
        preview_draft,
        "What a notice not yet created would produce: audience per town, SMS bill, message per channel",
        "notices",
        body=NoticeIn,
        query=DraftPreviewQuery,
        response=DraftPreview,
        roles=("issuer", "admin"),
    ),
]
