"""Residents (subscribers), read and changed within the key's PersonalDataScope (docs/api.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import Field

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.routing import Link, Route, json_response, page_response, path_int, read_body, read_query
from notifier.domain.enums import Role
from notifier.domain.errors import Conflict
from notifier.domain.models import ApiKeyInfo, AreaCode, Code, Subscriber, SubscriberIn, SubscriberPatch
from notifier.policy import personal_data_scope
from notifier.store import Store

WRITERS = (Role.ISSUER,)
DUPLICATE = "another resident has this phone number or external_id (its id only to a key that reads it)"


class SubscriberQuery(PageQuery):
    area: AreaCode | None = None
    group: Code | None = None
    topic: Code | None = None
    limit: int = Field(50, ge=1, le=500)


async def create_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    data = await read_body(request, SubscriberIn)
    store = request.app[STORE]
    scope = await personal_data_scope(store, key)
    async with audited_duplicates(store, key):
        created = await store.create_subscriber(data, actor(key), scope)
    return json_response(created, 201)


@contextlib.asynccontextmanager
async def audited_duplicates(store: Store, key: ApiKeyInfo) -> AsyncIterator[None]:
    """A refused duplicate phone or external_id is audited (after the refused change was rolled back): the
    409 tells that a value is registered, so repeated tries show up in the log."""
    try:
        yield
    except Conflict as exc:
        if "field" in exc.extra:
            detail: dict[str, object] = {"field": exc.extra["field"], "disclosed": "existing_id" in exc.extra}
            await store.audit(actor(key), "subscriber.duplicate", "subscriber", exc.extra.get("existing_id"), detail)
        raise


async def list_subscribers(request: web.Request) -> web.Response:
    key = await require(request)
    q = read_query(request, SubscriberQuery)
    store = request.app[STORE]
    scope = await personal_data_scope(store, key)
    if scope is not None and q.group is not None:
        # the filter alone would tell which of the department's residents belong to the group
        scope.check_groups([q.group], "query.group")
    items, cursor = await store.list_subscribers(
        area=q.area, group=q.group, topic=q.topic, cursor=q.cursor, limit=q.limit, scope=scope
    )
    filters = {name: value for name, value in (("area", q.area), ("group", q.group), ("topic", q.topic)) if value}
    await store.audit(actor(key), "subscriber.list", "subscriber", None, {"filter": filters, "rows": len(items)})
    return page_response(items, cursor)


async def get_subscriber(request: web.Request) -> web.Response:
    key = await require(request)
    store = request.app[STORE]
    subscriber_id = path_int(request, "id")
    subscriber = await store.get_subscriber(subscriber_id, await personal_data_scope(store, key))
    await store.audit(actor(key), "subscriber.read", "subscriber", subscriber_id)
    return json_response(subscriber)


async def patch_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    subscriber_id = path_int(request, "id")
    patch = await read_body(request, SubscriberPatch)
    store = request.app[STORE]
    scope = await personal_data_scope(store, key)
    async with audited_duplicates(store, key):
        updated = await store.update_subscriber(subscriber_id, patch, actor(key), scope)
    return json_response(updated)


async def delete_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    store = request.app[STORE]
    await store.delete_subscriber(path_int(request, "id"), actor(key), await personal_data_scope(store, key))
    return web.Response(status=204)


ROUTES = [
    Route(
        "POST",
        "/api/v1/subscribers",
        create_subscriber,
        "Register a resident",
        "subscribers",
        body=SubscriberIn,
        response=Subscriber,
        status=201,
        roles=("issuer", "admin"),
        extra_responses={409: DUPLICATE},
        links=(Link("get_subscriber"), Link("patch_subscriber"), Link("delete_subscriber")),
    ),
    Route(
        "GET",
        "/api/v1/subscribers",
        list_subscribers,
        "List residents by area, group or topic",
        "subscribers",
        query=SubscriberQuery,
        response=Subscriber,
        response_list=True,
    ),
    Route("GET", "/api/v1/subscribers/{id}", get_subscriber, "One resident", "subscribers", response=Subscriber),
    Route(
        "PATCH",
        "/api/v1/subscribers/{id}",
        patch_subscriber,
        "Change a resident's data, choices or consent",
        "subscribers",
        body=SubscriberPatch,
        response=Subscriber,
        roles=("issuer", "admin"),
        extra_responses={409: DUPLICATE},
    ),
    Route(
        "DELETE",
        "/api/v1/subscribers/{id}",
        delete_subscriber,
        "Erase a resident's personal data",
        "subscribers",
        status=204,
        roles=("issuer", "admin"),
    ),
]
