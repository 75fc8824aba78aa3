"""Residents (subscribers)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.routing import Route, json_response, page_response, path_int, read_body, read_query
from notifier.domain.enums import Role
from notifier.domain.models import AreaCode, Code, Subscriber, SubscriberIn, SubscriberPatch

WRITERS = (Role.ISSUER,)


class SubscriberQuery(PageQuery):
    area: AreaCode | None = None
    group: Code | None = None
    topic: Code | None = None
    limit: int = Field(50, ge=1, le=500)


async def create_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    data = await read_body(request, SubscriberIn)
    return json_response(await request.app[STORE].create_subscriber(data, actor(key)), 201)


async def list_subscribers(request: web.Request) -> web.Response:
    await require(request)
    q = read_query(request, SubscriberQuery)
    items, cursor = await request.app[STORE].list_subscribers(
        area=q.area, group=q.group, topic=q.topic, cursor=q.cursor, limit=q.limit
    )
    return page_response(items, cursor)


async def get_subscriber(request: web.Request) -> web.Response:
    await require(request)
    return json_response(await request.app[STORE].get_subscriber(path_int(request, "id")))


async def patch_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    subscriber_id = path_int(request, "id")
    patch = await read_body(request, SubscriberPatch)
    return json_response(await request.app[STORE].update_subscriber(subscriber_id, patch, actor(key)))


async def delete_subscriber(request: web.Request) -> web.Response:
    key = await require(request, *WRITERS)
    await request.app[STORE].delete_subscriber(path_int(request, "id"), actor(key))
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
