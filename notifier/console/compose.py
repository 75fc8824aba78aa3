"""Composing a notice in the console, with a live preview, and editing a draft or a rejected one.

    GET  /console/notices/new             the compose form (issuers)
    POST /console/notices/new             action=preview: the form again with its preview (no script needed);
                                          action=draft: create the draft; action=submit: create and submit it
    POST /console/notices/preview         the preview alone, as an HTML fragment: what compose.js fetches while
                                          the clerk types (printout=1 adds the printout image)
    GET  /console/notices/{id}/edit       the form filled with the author's draft or rejected notice
    POST /console/notices/{id}/edit       the same actions; the notice's content is replaced (a draft again)

Everything goes through the API's own functions: ``draft_notice`` and ``revise_notice`` (the department's rules,
the render check, the store), ``draft_preview`` (the audience per town, the message per channel) and the store's
``transition_notice`` for the submission. A form carries a random token used as the idempotency key, so a double
click creates one notice.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from notifier.api.draft_preview import draft_preview
from notifier.api.keys import SETTINGS
from notifier.api.notices import draft_notice, revise_notice
from notifier.api.routing import path_int
from notifier.console.compose_form import (
    ComposeValues,
    area_tree,
    errors_by_field,
    from_notice,
    read_values,
    template_choices,
    to_notice,
)
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.enums import ChannelKind, ChannelMode, NoticeState, Role, Severity
from notifier.domain.errors import Conflict, Forbidden, InvalidInput, NotifierError
from notifier.domain.models import Notice, NoticeIn
from notifier.policy import notice_for_key, personal_data_scope

NEW_PATH = "/console/notices/new"
PREVIEW_PATH = "/console/notices/preview"
COMPOSERS = (Role.ISSUER,)
EDITABLE = (NoticeState.DRAFT, NoticeState.REJECTED)
TOKEN_FIELD = "form_token"
ROSTER_CHOICES = 50  # the department's newest rosters the form offers


def notice_path(notice_id: int) -> str:
    return f"/console/notices/{notice_id}"


def _timezone(console: Console) -> str:
    return console.request.app[SETTINGS].server.timezone


async def _choices(console: Console) -> dict[str, Any]:
    """What the form offers the staff member: their department's topics and groups (every one for an admin)."""
    store, staff = console.store, console.staff
    scope = await personal_data_scope(store, staff.as_key())
    department = await store.get_department(staff.department)
    topics, _ = await store.list_topics(None, 500)
    groups, _ = await store.list_groups(None, 500)
    settings = console.request.app[SETTINGS]
    served = {config.kind.value for config in settings.channels.values()}
    rosters = [r for r in await store.list_rosters(staff.department, ROSTER_CHOICES) if r["erased_at"] is None]
    return {
        "topics": [t for t in topics if t.code in department.topics],
        "target_topics": [t for t in topics if scope is None or t.code in scope.topics],
        "groups": [g for g in groups if scope is None or g.code in scope.groups],
        "rosters": rosters,
        "publicity_columns": _publicity_columns(rosters),
        "towns": area_tree(await store.list_areas()),
        "templates": await template_choices(store, staff.department),
        "channels": [kind.value for kind in ChannelKind if kind.value in served],
        "severities": [s.value for s in Severity],
        "modes": [m.value for m in ChannelMode],
    }


def _publicity_columns(rosters: list[Any]) -> list[str]:
    """What a publicity list may show: the resident's name and village, and every column of the rosters offered."""
    return list(dict.fromkeys(["name", "area", *(column for r in rosters for column in json.loads(r["columns"]))]))


def _defaults() -> ComposeValues:
    values = ComposeValues()
    values.scalars = {"severity": Severity.INFO.value, "channel_mode": ChannelMode.FIRST_AVAILABLE.value}
    values.lists = {"channels": [ChannelKind.SMS.value]}
    return values


async def _form(
    console: Console,
    values: ComposeValues,
    *,
    notice: Notice | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    preview: Any = None,
    token: str | None = None,
) -> web.Response:
    context = {
        **await _choices(console),
        "values": values,
        "notice": notice,
        "errors": errors or {},
        "preview": preview,
        "town_names": await console.store.printable_area_names() if preview is not None else {},
        "action_path": f"{notice_path(notice.id)}/edit" if notice else NEW_PATH,
        "preview_path": PREVIEW_PATH,
        "token_field": TOKEN_FIELD,
        "token": token or secrets.token_urlsafe(18),
    }
    return console.render("compose.html", status=status, **context)


def _refusal(exc: NotifierError) -> dict[str, str]:
    if isinstance(exc, InvalidInput) and exc.errors:
        return errors_by_field(exc.errors)
    return {"": exc.detail}


@page(roles=COMPOSERS)
async def compose(request: web.Request, console: Console) -> web.StreamResponse:
    if request.method == "GET":
        return await _form(console, _defaults())
    return await _act(console, None)


async def _editable(console: Console) -> Notice:
    notice = await notice_for_key(console.store, console.staff.as_key(), path_int(console.request, "id"))
    t = console.t
    if notice.created_by != console.staff.key_id:
        raise Forbidden(t("只有起草人可以修改这条通知", "Only the notice's author may edit it"))
    if notice.state not in EDITABLE:
        state = t("state." + notice.state.value)
        raise Conflict(t(f"通知{state}，不能再修改", f"The notice is {state} and can no longer be edited"))
    return notice


@page(roles=COMPOSERS)
async def edit(request: web.Request, console: Console) -> web.StreamResponse:
    notice = await _editable(console)
    if request.method == "GET":
        return await _form(console, from_notice(notice, _timezone(console)), notice=notice)
    return await _act(console, notice)


async def _act(console: Console, notice: Notice | None) -> web.StreamResponse:
    """A posted form: preview it, or create (or replace) the notice and, for ``submit``, send it for approval."""
    values = read_values(console.form)
    action = console.field("action", 20)
    token = console.field(TOKEN_FIELD, 40) or None
    try:
        draft = to_notice(values, _timezone(console))
        if action == "preview":
            preview = await draft_preview(console.request, console.staff.as_key(), draft, printout=True,
                                          by=console.staff.actor)
            return await _form(console, values, notice=notice, preview=preview, token=token)
        saved = await _save(console, notice, draft, token)
    except (InvalidInput, Forbidden, Conflict) as exc:
        return await _form(console, values, notice=notice, status=exc.status, errors=_refusal(exc), token=token)
    if action == "submit" and saved.state is NoticeState.DRAFT:
        await console.store.transition_notice(
            saved.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=console.staff.actor
        )
    raise redirect(notice_path(saved.id))


async def _save(console: Console, notice: Notice | None, draft: NoticeIn, token: str | None) -> Notice:
    key, actor = console.staff.as_key(), console.staff.actor
    if notice is not None:
        return await revise_notice(console.request, key, notice.id, draft, actor=actor)
    idempotency_key = f"console-{token}" if token else None
    created, _ = await draft_notice(console.request, key, draft, actor=actor, idempotency_key=idempotency_key)
    return created


@page(roles=COMPOSERS)
async def preview_fragment(request: web.Request, console: Console) -> web.StreamResponse:
    """The preview panel for the posted form, or the reasons there is none (status 422 or 403)."""
    values = read_values(console.form)
    try:
        draft = to_notice(values, _timezone(console))
        preview = await draft_preview(request, console.staff.as_key(), draft, printout=console.field("printout") == "1",
                                      by=console.staff.actor)
    except (InvalidInput, Forbidden) as exc:
        return console.render("_compose_preview.html", status=exc.status, preview=None, errors=_refusal(exc),
                              town_names={})  # fmt: skip
    names = await console.store.printable_area_names()
    return console.render("_compose_preview.html", preview=preview, errors={}, town_names=names)


NAV_ITEMS = [NavItem(NEW_PATH, "起草通知", "New notice", roles=COMPOSERS)]
ROUTES = [
    ("GET", NEW_PATH, compose),
    ("POST", NEW_PATH, compose),
    ("POST", PREVIEW_PATH, preview_fragment),
    ("GET", "/console/notices/{id}/edit", edit),
    ("POST", "/console/notices/{id}/edit", edit),
]
