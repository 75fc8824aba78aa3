"""Following a notice as it goes out, and acting on it: cancel, or issue an update or an all-clear.

    GET  /console/notices/{id}/follow      counts per channel and state, reach, a table per town, failures by
                                           reason (as the channels page shows an error: no number, no address),
                                           printouts per village with their print job; updates itself
    GET  /console/notices/{id}/events      the same live part as server-sent events (``snapshot`` whenever it
                                           changes, ``end`` once nothing is left to send)
    POST /console/notices/{id}/cancel      issuers and approvers, as ``POST /notices/{id}/cancel``
    POST /console/notices/{id}/follow-up   issuers: an update or an all-clear to exactly the residents the notice
                                           reached (``target.referenced``), created and submitted for approval
                                           through the API's own checks

The stream polls the store every ``POLL`` seconds (one read of a few aggregates) for at most ``STREAM_FOR``;
the browser's EventSource reconnects after that by itself. A session that ends ends its streams, and a stream
whose browser went away stops at its next look. One session holds at most ``STREAMS_PER_SESSION`` streams at
once (429 with ``Retry-After`` beyond; the page then shows its live part as of its loading): each polls the
database and keeps a connection, and a staff member opening them without end would take both from everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notifier.api.notices import notice_renderer
from notifier.api.problems import field_errors
from notifier.api.routing import path_int
from notifier.api.wake import wake
from notifier.console import security
from notifier.console.channels import error_reason
from notifier.console.framework import Console, current_session, error_page, page, redirect
from notifier.console.notices import notice_path
from notifier.domain.enums import ChannelKind, NoticeState, Role, Severity
from notifier.domain.models import Decision, Notice, NoticeIn
from notifier.engine import cancel_notice as stop_notice
from notifier.engine import check_renders
from notifier.policy import check_new_notice, notice_for_key

POLL = 0.5  # seconds between two looks at the store while a page follows a notice
STREAM_FOR = 600.0  # seconds one stream lasts; EventSource then reconnects
STREAMS_PER_SESSION = 4  # follow pages open at once in one signed-in browser
FINAL_STATES = (NoticeState.DONE, NoticeState.CANCELLED, NoticeState.EXPIRED, NoticeState.REJECTED)
CANCELLABLE = (NoticeState.DRAFT, NoticeState.PENDING_APPROVAL, NoticeState.APPROVED, NoticeState.SCHEDULED,
               NoticeState.SENDING)  # fmt: skip
AREA_KINDS = (ChannelKind.BOT, ChannelKind.BULLETIN, ChannelKind.FEED)  # not for referenced residents
FOLLOW_UP_TITLES = {"update": ("【更新】", "[Update] "), "all_clear": ("【解除】", "[All clear] ")}


@dataclass
class FollowStreams:
    """The follow streams being served, by session (the hash of its cookie's token)."""

    open: dict[str, list[web.Request]] = field(default_factory=dict)

    def admit(self, session: str, request: web.Request) -> bool:
        """Count ``request`` among the session's streams, unless it already holds ``STREAMS_PER_SESSION`` whose
        browser is still connected."""
        streams = self.open.setdefault(session, [])
        streams[:] = [stream for stream in streams if connected(stream)]
        if len(streams) >= STREAMS_PER_SESSION:
            return False
        streams.append(request)
        return True

    def release(self, session: str, request: web.Request) -> None:
        streams = [stream for stream in self.open.get(session, []) if stream is not request]
        if streams:
            self.open[session] = streams
        else:
            self.open.pop(session, None)


FOLLOW_STREAMS: web.AppKey[FollowStreams] = web.AppKey("console_follow_streams")


def setup(app: web.Application) -> None:
    app[FOLLOW_STREAMS] = FollowStreams()


def connected(request: web.Request) -> bool:
    """Whether the browser that sent ``request`` still holds its connection (a closed tab is seen at once, where a
    write to it would wait for the next change of the live part)."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


@dataclass
class Snapshot:
    notice: Notice
    towns: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    printouts: list[dict[str, Any]]
    waiting: int

    @property
    def final(self) -> bool:
        return self.notice.state in FINAL_STATES and self.waiting == 0


async def _notice(console: Console) -> Notice:
    return await notice_for_key(console.store, console.staff.as_key(), path_int(console.request, "id"))


def failures_by_reason(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed deliveries per channel kind and reason, the reason as ``error_reason`` gives it: a gateway's words
    often repeat the resident's address (an SMTP 550 names the mailbox), and a county-wide notice reaches residents
    the department may not read."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        counts[(row["channel"], error_reason(row["reason"]) if row["reason"] else "")] += int(row["n"])
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"channel": channel, "reason": reason, "n": n} for (channel, reason), n in ordered]


async def snapshot(console: Console, notice_id: int) -> Snapshot:
    store = console.store
    return Snapshot(
        notice=await store.get_notice(notice_id),
        towns=await store.notice_towns(notice_id),
        failures=failures_by_reason(await store.notice_failures(notice_id)),
        printouts=await store.notice_printouts(notice_id),
        waiting=await store.notice_waiting(notice_id),
    )


async def _live_html(console: Console, notice_id: int) -> tuple[str, bool]:
    snap = await snapshot(console, notice_id)
    names = await console.store.printable_area_names()
    return console.render_fragment("_follow_live.html", snap=snap, town_names=names), snap.final


async def _follow_page(
    console: Console, notice: Notice, *, status: int = 200, errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:  # fmt: skip
    live, final = await _live_html(console, notice.id)
    staff = console.staff
    personal = [kind for kind in notice.channels if kind not in AREA_KINDS]
    context = {
        "notice": notice,
        "live": live,
        "final": final,
        "may_cancel": notice.state in CANCELLABLE and staff.role in (Role.ISSUER, Role.APPROVER, Role.ADMIN),
        "may_follow_up": notice.state in (NoticeState.SENDING, NoticeState.DONE)
        and bool(personal)
        and staff.role in (Role.ISSUER, Role.ADMIN),
        "errors": errors or {},
        "form": form or {"kind": "update", "title": "", "body": ""},
    }
    return console.render("follow.html", status=status, **context)


@page()
async def follow_page(request: web.Request, console: Console) -> web.StreamResponse:
    return await _follow_page(console, await _notice(console))


def _event(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


@page(activity=False)  # an open follow page is no one at the desk: the session still ends after an idle hour
async def follow_events(request: web.Request, console: Console) -> web.StreamResponse:
    notice = await _notice(console)
    streams, session = request.app[FOLLOW_STREAMS], console.session.token_hash if console.session else ""
    if not streams.admit(session, request):
        message = console.t(
            f"已打开 {STREAMS_PER_SESSION} 个实时跟踪页面，请关闭其中一个后刷新本页",
            f"{STREAMS_PER_SESSION} follow pages are already updating live; close one and reload this page",
        )
        response = error_page(console, 429, message)
        response.headers["Retry-After"] = str(int(STREAM_FOR))
        return response
    try:
        return await _follow_stream(request, console, notice)
    finally:
        streams.release(session, request)


async def _follow_stream(request: web.Request, console: Console, notice: Notice) -> web.StreamResponse:
    response = web.StreamResponse(headers={**security.HEADERS, "Content-Type": "text/event-stream; charset=utf-8",
                                           "X-Accel-Buffering": "no"})  # fmt: skip
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    until = loop.time() + STREAM_FOR
    sent = None
    with contextlib.suppress(ConnectionResetError):
        while loop.time() < until and connected(request) and await current_session(request, activity=False) is not None:
            html, final = await _live_html(console, notice.id)
            if html != sent:
                await response.write(_event("snapshot", html))
                sent = html
            if final:
                await response.write(_event("end", ""))
                break
            await asyncio.sleep(POLL)
    return response


@page(roles=(Role.ISSUER, Role.APPROVER))
async def cancel(request: web.Request, console: Console) -> web.StreamResponse:
    notice = await _notice(console)
    reason = console.field("reason", 1001).strip() or None
    try:
        decision = Decision(reason=reason)
    except ValidationError as exc:
        errors = {e.loc.removeprefix("reason"): e.msg for e in field_errors(exc)}
        return await _follow_page(console, notice, status=422, errors={"reason": next(iter(errors.values()))})
    store = console.store
    async with store.db.transaction():
        await stop_notice(store, notice.id, console.staff.actor)
        if decision.reason:
            await store.db.execute("set_notice_reason", {"id": notice.id, "reason": decision.reason})
    wake(request.app)
    raise redirect(f"{notice_path(notice.id)}/follow")


@page(roles=(Role.ISSUER,))
async def follow_up(request: web.Request, console: Console) -> web.StreamResponse:
    """An update or an all-clear: a new notice on the same topic and personal channels, to the residents the
    first one reached, through ``check_new_notice`` and ``check_renders`` like ``POST /notices``."""
    t, store, staff = console.t, console.store, console.staff
    notice = await _notice(console)
    kind = console.field("kind", 20)
    form = {"kind": kind, "title": console.field("title", 300), "body": console.field("body", 10_001)}
    if kind not in FOLLOW_UP_TITLES:
        return await _follow_page(console, notice, status=422, form=form,
                                  errors={"kind": t("请选择更新或解除", "Choose update or all-clear")})  # fmt: skip
    payload = {
        "topic": notice.topic,
        "title": form["title"].strip() or t(*FOLLOW_UP_TITLES[kind]) + notice.title,
        "body": form["body"].strip() or None,
        "severity": notice.severity.value if kind == "update" else Severity.INFO.value,
        "target": {"referenced": True},
        "references": notice.id,
        "channels": [k.value for k in notice.channels if k not in AREA_KINDS],
    }
    try:
        new = NoticeIn.model_validate(payload)
    except ValidationError as exc:
        errors = {e.loc.split(".")[0]: e.msg for e in field_errors(exc)}
        return await _follow_page(console, notice, status=422, errors=errors, form=form)
    key = staff.as_key()
    await check_new_notice(store, key, new)
    version = await check_renders(store, new, key.department, notice_renderer(request))
    created, _ = await store.create_notice(
        new, department=key.department, created_by=key.id, actor=staff.actor, template_version=version.version
    )
    await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=staff.actor)
    raise redirect(notice_path(created.id))


ROUTES = [
    ("GET", "/console/notices/{id}/follow", follow_page),
    ("GET", "/console/notices/{id}/events", follow_events),
    ("POST", "/console/notices/{id}/cancel", cancel),
    ("POST", "/console/notices/{id}/follow-up", follow_up),
]
