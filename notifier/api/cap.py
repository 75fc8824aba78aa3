"""CAP 1.2 in and out: ``POST /api/v1/cap`` makes a notice of an alert; ``GET /notices/{id}/cap.xml`` exports one.

An alert is checked against the OASIS schema first (a 422 ``/problems/invalid-cap`` carries the schema's
words and the path of the element at fault), then: only ``status`` Actual and ``scope`` Public become
notices (Exercise, Test, System and Draft must never reach the public: 422 naming ``alert.status``);
``msgType`` Alert makes a notice; Update makes a notice that references the notice of the first alert it
refers to that this department sent (an update whose earlier alerts never came here is taken as a new
alert), and cancels that earlier notice if nobody approved it yet; Cancel cancels the notices of the alerts
it refers to (422 naming ``alert.references`` when none came here), and so does an Update already expired when
it arrives (the alert it updates is over; an alert already expired that refers to nothing here is a 422 naming
``alert.info.expires``). The notice is submitted for approval at
once: it follows the department's approval rules like any other. The same sender and identifier again
answer with the notice of the first (200); from another department's key they are a 409.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError

from notifier.api.auth import actor, require
from notifier.api.keys import SETTINGS, STORE
from notifier.api.notices import notice_renderer
from notifier.api.routing import Answer, Route, json_response, path_int, read_query
from notifier.cap.areas import match_areas
from notifier.cap.document import MEDIA_TYPE, CapAlert, InvalidCap, read_alert, write_alert
from notifier.cap.mapping import alert_from_notice, cap_time, choose_info, choose_topic, notice_from_alert
from notifier.domain.enums import NoticeState, Role
from notifier.domain.errors import Conflict, FieldError, InvalidInput
from notifier.domain.models import ApiKeyInfo, AreaCode, Code, Notice, Strict
from notifier.engine import cancel_notice as stop_notice
from notifier.engine import check_renders
from notifier.policy import check_new_notice, notice_for_key
from notifier.store import Store

ACCEPTED_MEDIA = (MEDIA_TYPE, "application/xml", "text/xml")
OPEN_STATES = (NoticeState.DRAFT, NoticeState.PENDING_APPROVAL)


class CapQuery(Strict):
    topic: Code | None = None
    area: AreaCode | None = None


class InvalidCapAlert(InvalidInput):
    def __init__(self, exc: InvalidCap) -> None:
        super().__init__(exc.summary, [FieldError(path, reason, "cap_schema") for path, reason in exc.errors])
        self.title = "Invalid CAP alert"
        self.slug = "invalid-cap"


def _refuse(loc: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{loc}: {msg}", [FieldError(loc, msg)])


async def _read(request: web.Request) -> CapAlert:
    if request.content_type not in ACCEPTED_MEDIA:
        raise web.HTTPUnsupportedMediaType(
            text=f"the body must be a CAP 1.2 alert ({', '.join(ACCEPTED_MEDIA)}), not {request.content_type[:100]}"
        )
    data = await request.read()
    if not data:
        raise _refuse("body", "a CAP 1.2 alert is required")
    try:
        alert = await asyncio.to_thread(read_alert, data)
    except InvalidCap as exc:
        raise InvalidCapAlert(exc) from None
    if alert.status != "Actual":
        raise _refuse("alert.status", f"only Actual alerts become notices, not {alert.status}")
    if alert.scope != "Public":
        raise _refuse("alert.scope", f"only Public alerts become notices, not {alert.scope}")
    if alert.msg_type not in ("Alert", "Update", "Cancel"):
        raise _refuse("alert.msgType", f"{alert.msg_type} is not acted on; send Alert, Update or Cancel")
    return alert


CAP_ELEMENT = {"title": "alert.info.headline", "body": "alert.info.description", "expires_at": "alert.info.expires"}


def _unusable(exc: ValidationError) -> InvalidInput:
    """The notice's own checks refused what the alert gave it: a 422 naming the element each field came from."""
    errors = [
        FieldError(CAP_ELEMENT.get(str(error["loc"][0]) if error["loc"] else "", "alert.info"), error["msg"])
        for error in exc.errors()
    ]
    return InvalidInput(f"{errors[0].loc}: {errors[0].msg}", errors)


async def _referenced(store: Store, key: ApiKeyInfo, alert: CapAlert) -> list[Notice]:
    """The notices of the alerts this one refers to that came here through this department."""
    found = []
    for sender, identifier in alert.referenced():
        row = await store.find_cap_alert(sender, identifier)
        if row is not None and row["department"] == key.department:
            found.append(await store.get_notice(int(row["notice_id"])))
    return found


async def import_cap(request: web.Request) -> web.Response:
    key = await require(request, Role.ISSUER)
    query = read_query(request, CapQuery)
    alert = await _read(request)
    store = request.app[STORE]
    seen = await store.find_cap_alert(alert.sender, alert.identifier)
    if seen is not None:
        return json_response(await _repeat(store, key, seen), 200)
    earlier = await _referenced(store, key, alert)
    try:
        if alert.msg_type == "Cancel" or (alert.msg_type == "Update" and earlier and _expired(alert)):
            # an Update that has already expired says the alert it updates is over: it ends it as a Cancel does
            return json_response(await _cancel(store, key, alert, earlier), 200)
        return json_response(await _create(request, key, query, alert, earlier[0] if earlier else None), 201)
    except sqlite3.IntegrityError:  # the same alert, sent twice at once: the first one won
        seen = await store.find_cap_alert(alert.sender, alert.identifier)
        if seen is None:
            raise
        return json_response(await _repeat(store, key, seen), 200)


def _expired(alert: CapAlert) -> bool:
    info = choose_info(alert)
    try:
        expires = cap_time(info.expires) if info is not None else None
    except (ValueError, OverflowError):  # a time outside the calendar: the notice's own checks name it (_create)
        return False
    try:
        return expires is not None and expires <= datetime.now(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the calendar once in UTC: _create names it
        return False


async def _repeat(store: Store, key: ApiKeyInfo, seen: dict[str, object]) -> Notice:
    if seen["department"] != key.department:
        raise Conflict("an alert with this sender and identifier came through another department")
    return await store.get_notice(int(str(seen["notice_id"])))


async def _cancel(store: Store, key: ApiKeyInfo, alert: CapAlert, earlier: list[Notice]) -> Notice:
    if not earlier:
        raise _refuse("alert.references", "refers to no alert this department sent here: nothing to cancel")
    async with store.db.transaction():
        for notice in earlier:
            if not notice.state.is_terminal:
                await stop_notice(store, notice.id, actor(key))
        await store.record_cap_alert(
            sender=alert.sender,
            identifier=alert.identifier,
            sent=alert.sent,
            msg_type=alert.msg_type,
            notice_id=earlier[0].id,
            department=key.department,
        )
    return await store.get_notice(earlier[0].id)


async def _areas(store: Store, alert: CapAlert, fallback: str | None) -> list[str]:
    info = choose_info(alert)
    assert info is not None
    areas = await store.list_areas()
    county = next((area.code for area in areas if area.level == "county"), "")
    found = match_areas(info.areas, [area.code for area in areas], await store.area_centroids(), county)
    if found:
        return found
    if fallback is not None:
        return [fallback]
    raise _refuse(
        "alert.info.area",
        "no geocode, polygon or circle of the alert falls in the county; send ?area=CODE to target an area",
    )


async def _create(
    request: web.Request, key: ApiKeyInfo, query: CapQuery, alert: CapAlert, earlier: Notice | None
) -> Notice:
    store = request.app[STORE]
    info = choose_info(alert)
    if info is None:
        raise _refuse("alert.info", f"an {alert.msg_type} needs an info block to become a notice")
    department = await store.get_department(key.department)
    topic = query.topic or choose_topic(info, department.topics)
    if topic is None:
        raise _refuse("query.topic", f"department {key.department} issues on no topic")
    areas = await _areas(store, alert, query.area)
    try:
        notice_in = notice_from_alert(alert, info, topic, areas, earlier.id if earlier else None)
    except ValidationError as exc:  # valid CAP that no notice can hold, e.g. an expiry outside the calendar in UTC
        raise _unusable(exc) from None
    await check_new_notice(store, key, notice_in, expires_loc="alert.info.expires")
    version = await check_renders(store, notice_in, key.department, notice_renderer(request))
    async with store.db.transaction():
        created, _ = await store.create_notice(
            notice_in, department=key.department, created_by=key.id, actor=actor(key), template_version=version.version
        )
        await store.set_notice_cap(created.id, alert.model_dump(mode="json"))
        await store.record_cap_alert(
            sender=alert.sender,
            identifier=alert.identifier,
            sent=alert.sent,
            msg_type=alert.msg_type,
            notice_id=created.id,
            department=key.department,
        )
        await store.audit(
            actor(key), "notice.cap_import", "notice", created.id, {"cap": f"{alert.sender},{alert.identifier}"}
        )
        await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.PENDING_APPROVAL, actor=actor(key))
        if earlier is not None and earlier.state in OPEN_STATES:
            await stop_notice(store, earlier.id, actor(key))
    return await store.get_notice(created.id)


async def notice_alert(request: web.Request, store: Store, notice: Notice, *, anonymous: bool) -> CapAlert:
    """The alert a notice came from, or the notice written as an alert of its department; ``anonymous`` for a
    public document (its text takes a place of the render threads' public share: ``public_pages.public_text``)."""
    stored = await store.notice_cap(notice.id)
    if stored is not None:
        return CapAlert.model_validate(stored)
    host = urlsplit(request.app[SETTINGS].server.public_url).hostname or "notifier"
    earlier = None
    if notice.references is not None:
        earlier_notice = await store.get_notice(notice.references)
        earlier_alert = await notice_alert(request, store, earlier_notice, anonymous=anonymous)
        earlier = earlier_alert.as_reference()
    names = {area.code: area.name for area in await store.list_areas()}
    county = next((area.code for area in await store.list_areas() if area.level == "county"), None)
    codes = notice.target.areas or ([county] if county else [])
    topics, _ = await store.list_topics(None, 500)
    event = next((topic.name for topic in topics if topic.code == notice.topic), notice.topic)
    if not notice.body:  # written from a template: its public text (the feed's), as the notice's page shows it
        from notifier.web.public_pages import names as known_names  # the pages import this module
        from notifier.web.public_pages import public_text

        text = await public_text(store, notice, await known_names(store), anonymous=anonymous)
        notice = notice.model_copy(update={"body": text})
    return alert_from_notice(
        notice,
        sender=f"{notice.department}@{host}",
        event=event,
        areas={code: names.get(code, code) for code in codes},
        earlier=earlier,
    )


async def export_cap(request: web.Request) -> web.Response:
    key = await require(request)
    store = request.app[STORE]
    notice = await notice_for_key(store, key, path_int(request, "id"))
    alert = await notice_alert(request, store, notice, anonymous=False)
    return web.Response(body=write_alert(alert), content_type=MEDIA_TYPE, charset="utf-8")


_XML = {"type": "string", "description": "a CAP 1.2 <alert> (urn:oasis:names:tc:emergency:cap:1.2)"}
ROUTES = [
    Route(
        "POST",
        "/api/v1/cap",
        import_cap,
        "A CAP 1.2 alert becomes a notice pending approval; Update and Cancel act on the earlier one",
        "cap",
        query=CapQuery,
        content={media: _XML for media in ACCEPTED_MEDIA},
        content_required=True,
        success=Answer("the notice the alert made", "application/json", {"$ref": "#/components/schemas/Notice"}),
        status=201,
        roles=("issuer", "admin"),
        extra_responses={
            200: Answer(
                "a repeated alert (same sender and identifier) or a Cancel: the notice it made or cancelled",
                "application/json",
                {"$ref": "#/components/schemas/Notice"},
            ),
            409: "the alert came through another department, or a notice it cancels is already finished",
            413: "the body is larger than [server] max_body_bytes",
            415: "the body is not application/cap+xml, application/xml or text/xml",
            422: "not XML, not valid against the CAP 1.2 schema (errors name the element), not Actual or "
            "Public, no area in the county, or a target the department may not use",
        },
    ),
    Route(
        "GET",
        "/api/v1/notices/{id}/cap.xml",
        export_cap,
        "The notice as a CAP 1.2 alert (the alert it came from, unchanged, for imported ones)",
        "cap",
        success=Answer("a CAP 1.2 alert", MEDIA_TYPE, _XML),
    ),
]
