"""Notices: draft, submit, approve (four eyes), reject, cancel, watch."""

from __future__ import annotations

from aiohttp import web

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import ENGINE, STORE
from notifier.api.routing import Route, json_response, page_response, path_int, read_body, read_query
from notifier.domain.enums import NoticeState, Role
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import ApiKeyInfo, Decision, Delivery, Notice, NoticeIn
from notifier.policy import check_approver, check_new_notice, notice_for_key

IDEMPOTENCY_HEADER = "Idempotency-Key"
ACTIVE = (
    NoticeState.DRAFT,
    NoticeState.PENDING_APPROVAL,
    NoticeState.APPROVED,
    NoticeState.SCHEDULED,
    NoticeState.SENDING,
)


class NoticeQuery(PageQuery):
    state: NoticeState | None = None


async def _own_notice(request: web.Request, key: ApiKeyInfo) -> Notice:
    return await notice_for_key(request.app[STORE], key, path_int(request, "id"))


async def create_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 200):
        raise InvalidInput("bad Idempotency-Key", [FieldError("header.Idempotency-Key", "1 to 200 characters")])
    notice = await read_body(request, NoticeIn)
    store = request.app[STORE]
    await check_new_notice(store, key, notice)
    created, is_new = await store.create_notice(
        notice, department=key.department, created_by=key.id, actor=actor(key), idempotency_key=idempotency_key
    )
    return json_response(created, 201 if is_new else 200)


async def list_notices(request: web.Request) -> web.Response:
    key = await require(request)
    q = read_query(request, NoticeQuery)
    items, cursor = await request.app[STORE].list_notices(
        department=key.department, state=q.state, cursor=q.cursor, limit=q.limit
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


async def submit_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    notice = await _own_notice(request, key)
    updated = await request.app[STORE].transition_notice(
        notice.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=actor(key)
    )
    return json_response(updated)


async def approve_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision(request)
    check_approver(key, notice)
    updated = await request.app[STORE].transition_notice(
        notice.id,
        [NoticeState.PENDING_APPROVAL],
        NoticeState.APPROVED,
        actor=actor(key),
        approved_by=key.id,
        reason=decision.reason,
    )
    engine = request.app.get(ENGINE)
    if engine is not None:
        engine.wake()
    return json_response(updated)


async def reject_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision(request)
    if not decision.reason:
        raise InvalidInput("a rejection needs a reason", [FieldError("reason", "required when rejecting")])
    updated = await request.app[STORE].transition_notice(
        notice.id, [NoticeState.PENDING_APPROVAL], NoticeState.REJECTED, actor=actor(key), reason=decision.reason
    )
    return json_response(updated)


async def cancel_notice(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER, Role.APPROVER)
    notice = await _own_notice(request, key)
    decision = await _decision(request)
    store = request.app[STORE]
    updated = await store.transition_notice(
        notice.id, ACTIVE, NoticeState.CANCELLED, actor=actor(key), reason=decision.reason
    )
    engine = request.app.get(ENGINE)
    if engine is not None:
        engine.wake()
    return json_response(updated)


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
        extra_responses={200: "the notice first created with this Idempotency-Key"},
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
        "A notice with its counts per channel and state",
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
        "POST",
        "/api/v1/notices/{id}/submit",
        submit_notice,
        "Submit a draft for approval",
        "notices",
        response=Notice,
        roles=("issuer", "admin"),
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/approve",
        approve_notice,
        "Approve (not by the author)",
        "notices",
        body=Decision,
        response=Notice,
        roles=("approver", "admin"),
    ),
    Route(
        "POST",
        "/api/v1/notices/{id}/reject",
        reject_notice,
        "Reject with a reason",
        "notices",
        body=Decision,
        response=Notice,
        roles=("approver", "admin"),
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
    ),
]
