"""Notices: draft, submit, approve (four eyes), reject, cancel, watch."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from channels import load_channels
from channels.base import Channel
from notifier import approval
from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import ENGINE, RENDERER, SETTINGS, STORE
from notifier.api.routing import (
    Answer,
    Link,
    Param,
    Route,
    json_response,
    page_response,
    path_int,
    read_body,
    read_query,
)
from notifier.api.wake import wake
from notifier.config import Settings
from notifier.domain.enums import ChannelKind, NoticeState, Role
from notifier.domain.errors import FieldError, Forbidden, InvalidInput
from notifier.domain.models import ApiKeyInfo, Decision, DecisionIn, Delivery, Notice, NoticeIn
from notifier.engine import Renderer, check_renders, preview
from notifier.engine import cancel_notice as stop_notice
from notifier.engine.areas import plan_area_deliveries
from notifier.engine.context import EngineContext
from notifier.engine.personal_preview import PersonalPreview, personal_preview
from notifier.engine.sms_bill import SmsBill, sms_bill, sms_text
from notifier.policy import check_new_notice, notice_for_key

IDEMPOTENCY_HEADER = "Idempotency-Key"
# a Structured Fields string (RFC 8941 §3.3.3), as the IETF Idempotency-Key draft defines the header
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,200}")
ACTIVE = (
    NoticeState.DRAFT,
    NoticeState.PENDING_APPROVAL,
    NoticeState.APPROVED,
    NoticeState.SCHEDULED,
    NoticeState.SENDING,
)


class NoticeQuery(PageQuery):
    state: NoticeState | None = None
    overdue_approval: bool | None = Field(
        None, description="true: only notices sent by override and not yet approved after the fact; false: the others"
    )


async def _own_notice(request: web.Request, key: ApiKeyInfo) -> Notice:
    return await notice_for_key(request.app[STORE], key, path_int(request, "id"))


async def create_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidInput(
            "bad Idempotency-Key",
            [FieldError("header.Idempotency-Key", "1 to 200 visible ASCII characters or spaces")],
        )
    notice = await read_body(request, NoticeIn)
    created, is_new = await draft_notice(request, key, notice, actor=actor(key), idempotency_key=idempotency_key)
    return json_response(created, 201 if is_new else 200)


async def draft_notice(
    request: web.Request, key: ApiKeyInfo, notice: NoticeIn, *, actor: str, idempotency_key: str | None = None
) -> tuple[Notice, bool]:
    """Store a draft after the department's rules and the render check: what ``POST /notices`` and the console's
    compose page both do. (notice, False) for an idempotency key seen before."""
    store = request.app[STORE]
    await check_new_notice(store, key, notice)
    version = await check_renders(store, notice, key.department, notice_renderer(request))
    return await store.create_notice(
        notice,
        department=key.department,
        created_by=key.id,
        actor=actor,
        idempotency_key=idempotency_key,
        template_version=version.version,
    )


async def revise_notice(
    request: web.Request, key: ApiKeyInfo, notice_id: int, content: NoticeIn, *, actor: str
) -> Notice:
    """Replace a draft's or a rejected notice's content, by its author only, with the checks of a new notice:
    what ``PUT /notices/{id}`` and the console's edit page both do."""
    store = request.app[STORE]
    notice = await notice_for_key(store, key, notice_id)
    if notice.created_by != key.id:
        raise Forbidden("only the author of a notice may edit it (so that its approver is never its author)")
    await check_new_notice(store, key, content)
    version = await check_renders(store, content, key.department, notice_renderer(request))
    return await store.edit_notice(notice.id, content, actor=actor, template_version=version.version)


def notice_renderer(request: web.Request) -> Renderer:
    """The engine's renderer when this process runs one, else the app's own (its compiled templates kept)."""
    return request.app[RENDERER]


async def list_notices(request: web.Request) -> web.Response:
    key = await require(request)
    q = read_query(request, NoticeQuery)
    items, cursor = await request.app[STORE].list_notices(
        department=key.department, state=q.state, cursor=q.cursor, limit=q.limit, overdue_approval=q.overdue_approval
    )
    return page_response(items, cursor)


async def get_notice(request: web.Request) -> web.Response:
    key = await require(request)
    return json_response(await _own_notice(request, key))


async def list_deliveries(request: web.Request) -> web.Response:
    key = await require(request)
    notice = await _own_notice(request, key)
    q = read_query(request, PageQuery)
    return page_response(*await request.app[STORE].list_deliveries(notice.id, q.cursor, q.limit))


async def _decision(request: web.Request) -> Decision:
    return await read_body(request, Decision) if request.can_read_body else Decision()


async def edit_notice(request: web.Request) -> web.Response:
    """Replace the content of a draft or a rejected notice (by its author), with the checks of a new one."""
    key = await require(request, Role.ISSUER)
    notice = await _own_notice(request, key)
    content = await read_body(request, NoticeIn)
    return json_response(await revise_notice(request, key, notice.id, content, actor=actor(key)))


async def submit_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    notice = await _own_notice(request, key)
    updated = await approval.submit(request.app[STORE], request.app[SETTINGS].approval, key, notice)
    return json_response(updated)


async def _decision_in(request: web.Request) -> DecisionIn:
    """The approver's comment: no body, an empty body and ``{}`` all mean none."""
    if not request.can_read_body or not await request.read():
        return DecisionIn()
    return await read_body(request, DecisionIn)


async def approve_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision_in(request)
    updated = await approval.approve(request.app[STORE], request.app[SETTINGS].approval, key, notice, decision.text)
    wake(request.app)
    return json_response(updated)


async def override_notice(request: web.Request) -> web.Response:
    key = await require(request)
    notice = await _own_notice(request, key)
    decision = await _decision_in(request)
    updated = await approval.override(request.app[STORE], request.app[SETTINGS].approval, key, notice, decision.text)
    wake(request.app)
    return json_response(updated)


async def reject_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision_in(request)
    if not decision.text:
        raise InvalidInput("a rejection needs a comment", [FieldError("comment", "required when rejecting")])
    updated = await request.app[STORE].decide_notice(
        notice.id, NoticeState.REJECTED, decider=key, actor=actor(key), comment=decision.text
    )
    return json_response(updated)


async def cancel_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision(request)
    store = request.app[STORE]
    async with store.db.transaction():
        await stop_notice(store, notice.id, actor(key))
        if decision.reason:
            await store.db.execute("set_notice_reason", {"id": notice.id, "reason": decision.reason})
    wake(request.app)
    return json_response(await store.get_notice(notice.id))


class UnopenedAdapters:
    """The channel adapters of a process that runs no engine, built once and never opened: the preview only
    asks them to compose their texts. Built in a thread, since finding the adapter classes reads every
    installed package's metadata from disk (a quarter of a second)."""

    def __init__(self) -> None:
        self._adapters: Mapping[str, Channel] | None = None

    async def get(self, settings: Settings) -> Mapping[str, Channel]:
        if self._adapters is None:
            self._adapters = await asyncio.to_thread(load_channels, settings)
        return self._adapters


UNOPENED_ADAPTERS = web.AppKey("unopened_adapters", UnopenedAdapters)


async def notice_sms_bill(request: web.Request, notice: Notice, deliveries: int) -> SmsBill | None:
    """The SMS parts the notice would be billed, counted on the text each SMS gateway receives."""
    settings = request.app[SETTINGS]
    engine = request.app.get(ENGINE)
    channels = engine.ctx.channels if engine is not None else await request.app[UNOPENED_ADAPTERS].get(settings)
    text = await sms_text(request.app[STORE], notice, settings, notice_renderer(request))
    confirm = notice.confirmation is not None
    return None if text is None else sms_bill(text, deliveries, settings, channels, confirm=confirm)


async def planning_context(request: web.Request) -> EngineContext:
    """The engine's context, or one over the unopened adapters: enough to plan deliveries, never to send."""
    engine = request.app.get(ENGINE)
    if engine is not None:
        return engine.ctx
    settings = request.app[SETTINGS]
    adapters = await request.app[UNOPENED_ADAPTERS].get(settings)
    return EngineContext(request.app[STORE], settings, dict(adapters), renderer=notice_renderer(request))


async def planned_area_deliveries(request: web.Request, notice: Notice | NoticeIn) -> list[dict[str, Any]]:
    """The group-bot posts and printouts (one row per area and kind) the engine's area plan gives the notice."""
    return await plan_area_deliveries(
        await planning_context(request),
        {"target": notice.target.model_dump(mode="json"), "severity": notice.severity.value},
        [kind.value for kind in notice.channels],
        now=0.0,
        deadline=None,
    )


class TownPreview(BaseModel):
    residents: int = Field(description="residents the target matches")
    reached: int = Field(description="of those, residents who would get at least one message")
    skipped: int = Field(description="opted out, consent withdrawn or no usable address")
    deliveries: dict[str, int] = Field(description="messages per channel kind")
    skipped_by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="the skipped residents by reason: erased, consent_withdrawn, topic_opt_out, channel_opt_out "
        "(an address for a channel of the notice, opted out of it), no_address (none for its channels)",
    )
    held_by_quiet_hours: int = Field(
        0, description="residents reached whose message would wait for their quiet hours to end if sent now"
    )


class Preview(TownPreview):
    towns: dict[str, TownPreview] = Field(description="the same figures per town code")
    areas: dict[str, int] = Field(
        default_factory=dict, description="area deliveries per kind: group-bot posts, notice-board printouts"
    )
    sms_segments: int | None = Field(
        None, description="SMS parts each resident's message is billed as through the primary SMS alias"
    )
    sms: SmsBill | None = Field(
        None, description="the SMS bill for the whole audience, per SMS alias; null without SMS deliveries"
    )
    personal: PersonalPreview | None = Field(
        None,
        description="a roster notice: three recipients' own texts and the longest SMS (the `sms` bill counts "
        "every message at the template's length without the cells; use personal.longest_sms for the parts)",
    )


async def preview_notice(request: web.Request) -> web.Response:
    key = await require(request)
    notice = await _own_notice(request, key)
    settings = request.app[SETTINGS]
    served = sorted({config.kind.value for config in settings.channels.values()})
    figures = await preview(request.app[STORE], notice, served=served, timezone=settings.server.timezone)
    bill = None
    if ChannelKind.SMS in notice.channels:
        bill = await notice_sms_bill(request, notice, figures["deliveries"].get("sms", 0))
    areas: dict[str, int] = {}
    for row in await planned_area_deliveries(request, notice):
        areas[row["channel"]] = areas.get(row["channel"], 0) + 1
    segments = bill.aliases[0].parts_per_message if bill is not None else None
    engine = request.app.get(ENGINE)
    channels = engine.ctx.channels if engine is not None else await request.app[UNOPENED_ADAPTERS].get(settings)
    personal = await personal_preview(request.app[STORE], notice, settings, notice_renderer(request), channels,
                                      actor=actor(key))  # fmt: skip
    return json_response(Preview(**figures, sms_segments=segments, sms=bill, areas=areas, personal=personal))


ROUTES = [
    Route(
        "POST",
        "/api/v1/notices",
        create_notice,
        "Draft a notice (Idempotency-Key honoured)",
        "notices",
        body=NoticeIn,
        response=Notice,
        status=201,
        roles=("issuer", "admin"),
        params=(
            Param(
                IDEMPOTENCY_HEADER,
                {"type": "string", "minLength": 1, "maxLength": 200},
                "header",
                description="a repeat with the same key answers 200 with the notice first created",
            ),
        ),
        extra_responses={
            200: Answer(
                "the notice first created with this Idempotency-Key",
                "application/json",
                {"$ref": "#/components/schemas/Notice"},
            ),
            409: "the Idempotency-Key was already used for a different notice",
        },
        links=tuple(
            Link(name)
            for name in (
                "get_notice",
                "edit_notice",
                "list_deliveries",
                "preview_notice",
                "submit_notice",
                "approve_notice",
                "reject_notice",
                "cancel_notice",
            )
        ),
    ),
    Route(
        "GET",
        "/api/v1/notices",
        list_notices,
        "The department's notices, newest first",
        "notices",
        query=NoticeQuery,
        response=Notice,
        response_list=True,
    ),
    Route(
        "GET",
        "/api/v1/notices/{id}",
        get_notice,
        "A notice with its counts per channel and state and its approvals and rejections",
        "notices",
        response=Notice,
    ),
    Route(
        "GET",
        "/api/v1/notices/{id}/deliveries",
        list_deliveries,
        "Deliveries of a notice",
        "notices",
        query=PageQuery,
        response=Delivery,
        response_list=True,
    ),
    Route(
        "PUT",
        "/api/v1/notices/{id}",
        edit_notice,
        "Edit a draft or a rejected notice (its author only); it becomes a draft, to be submitted again",
        "notices",
        body=NoticeIn,
        response=Notice,
        roles=("issuer", "admin"),
        extra_responses={409: "the notice is neither a draft nor rejected"},
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/submit",
        submit_notice,
        "Submit a draft for approval",
        "notices",
        response=Notice,
        roles=("issuer", "admin"),
        extra_responses={409: "the notice is not a draft"},
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/approve",
        approve_notice,
        "Approve (not by the author; each approver counts once, the notice is approved when the rule's number is "
        "reached), with an optional comment kept in the notice's decisions; after an override, approves after the fact",
        "notices",
        body=DecisionIn,
        response=Notice,
        roles=("approver", "admin"),
        extra_responses={409: "the notice is not pending approval"},
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/override",
        override_notice,
        "Send an extreme alert at once (emergency override, roles named in [approval] override_roles; comment "
        "required); it shows approval_overdue until approved after the fact",
        "notices",
        body=DecisionIn,
        response=Notice,
        extra_responses={409: "the notice is not a draft or pending approval"},
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/reject",
        reject_notice,
        "Reject with a comment (required), kept in the notice's decisions",
        "notices",
        body=DecisionIn,
        response=Notice,
        roles=("approver", "admin"),
        extra_responses={409: "the notice is not pending approval"},
    ),
    Route(
        "GET",
        "/api/v1/notices/{id}/preview",
        preview_notice,
        "Residents and deliveries per channel and town the notice will produce (before approval)",
        "notices",
        response=Preview,
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/cancel",
        cancel_notice,
        "Cancel; unsent deliveries stop",
        "notices",
        body=Decision,
        response=Notice,
        roles=("issuer", "approver", "admin"),
        extra_responses={409: "the notice is done or already closed"},
    ),
]
