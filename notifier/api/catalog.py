"""Areas, topics and groups."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from notifier.api.auth import actor, require
from notifier.api.keys import STORE
from notifier.api.routing import Route, json_response, page_response, read_body, read_query
from notifier.domain.enums import Role
from notifier.domain.models import Area, AreaIn, AreaNode, Group, GroupIn, Strict, Topic, TopicIn


class PageQuery(Strict):
    cursor: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="next_cursor of the previous page, as it came"
    )
    limit: int = Field(50, ge=1, le=500, description="items per page")


class AreaTree(Strict):
    items: list[AreaNode]


def build_tree(areas: list[Area]) -> list[AreaNode]:
    nodes = {a.code: AreaNode(**a.model_dump()) for a in areas}
    roots: list[AreaNode] = []
    for node in nodes.values():
        parent = nodes.get(node.parent) if node.parent else None
        (parent.children if parent else roots).append(node)
    return roots


async def list_areas(request: web.Request) -> web.Response:
    await require(request)
    return json_response(AreaTree(items=build_tree(await request.app[STORE].list_areas())))


async def create_area(request: web.Request) -> web.Response:
    key = await require(request, Role.ADMIN)
    area = await request.app[STORE].create_area(await read_body(request, AreaIn), actor(key))
    return json_response(area, 201)


async def list_topics(request: web.Request) -> web.Response:
    await require(request)
    query = read_query(request, PageQuery)
    return page_response(*await request.app[STORE].list_topics(query.cursor, query.limit))


async def create_topic(request: web.Request) -> web.Response:
    key = await require(request, Role.ADMIN)
    return json_response(await request.app[STORE].create_topic(await read_body(request, TopicIn), actor(key)), 201)


async def list_groups(request: web.Request) -> web.Response:
    await require(request)
    query = read_query(request, PageQuery)
    return page_response(*await request.app[STORE].list_groups(query.cursor, query.limit))


async def create_group(request: web.Request) -> web.Response:
    key = await require(request, Role.ADMIN)
    return json_response(await request.app[STORE].create_group(await read_body(request, GroupIn), actor(key)), 201)


ROUTES = [
    Route("GET", "/api/v1/areas", list_areas, "Tree of administrative areas", "areas", response=AreaTree),
    Route(
        "POST",
        "/api/v1/areas",
        create_area,
        "Add an area under an existing parent",
        "areas",
        body=AreaIn,
        response=Area,
        status=201,
        roles=("admin",),
        extra_responses={409: "an area with this code exists"},
    ),
    Route(
        "GET",
        "/api/v1/topics",
        list_topics,
        "List topics",
        "topics",
        query=PageQuery,
        response=Topic,
        response_list=True,
    ),
    Route(
        "POST",
        "/api/v1/topics",
        create_topic,
        "Create a topic",
        "topics",
        body=TopicIn,
        response=Topic,
        status=201,
        roles=("admin",),
        extra_responses={409: "a topic with this code exists"},
    ),
    Route(
        "GET",
        "/api/v1/groups",
        list_groups,
        "List resident groups",
        "groups",
        query=PageQuery,
        response=Group,
        response_list=True,
    ),
    Route(
        "POST",
        "/api/v1/groups",
        create_group,
        "Create a resident group",
        "groups",
        body=GroupIn,
        response=Group,
        status=201,
        roles=("admin",),
        extra_responses={409: "a group with this code exists"},
    ),
]
