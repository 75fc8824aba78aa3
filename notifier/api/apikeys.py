"""API keys for administrators: list them, revoke one (it is refused from the next request on)."""

from __future__ import annotations

import re

from aiohttp import web

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.routing import Route, json_response, page_response, read_query
from notifier.domain.enums import Role
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import ApiKeyRecord, Code

PREFIX_PATTERN = r"^[0-9a-f]{12}$"


class ApiKeyQuery(PageQuery):
    department: Code | None = None


def path_prefix(request: web.Request) -> str:
    prefix = request.match_info["prefix"]
    if not re.fullmatch(PREFIX_PATTERN, prefix, re.ASCII):
        raise InvalidInput("not a key prefix", [FieldError("path.prefix", "12 lower-case hexadecimal digits")])
    return prefix


async def list_api_keys(request: web.Request) -> web.Response:
    await require(request, Role.ADMIN)
    q = read_query(request, ApiKeyQuery)
    return page_response(
        *await request.app[STORE].list_api_keys(department=q.department, cursor=q.cursor, limit=q.limit)
    )


async def revoke_api_key(request: web.Request) -> web.Response:
    key = await require(request, Role.ADMIN)
    return json_response(await request.app[STORE].revoke_api_key(path_prefix(request), actor(key)))


ROUTES = [
    Route(
        "GET",
        "/api/v1/apikeys",
        list_api_keys,
        "API keys of every department (prefix, role, name, created, last used, revoked); never their secrets",
        "keys",
        query=ApiKeyQuery,
        response=ApiKeyRecord,
        response_list=True,
        roles=("admin",),
    ),
    Route(
        "POST",
        "/api/v1/apikeys/{prefix}/revoke",
        revoke_api_key,
        "Revoke a key: it is refused from its next request on; revoking it again changes nothing",
        "keys",
        response=ApiKeyRecord,
        roles=("admin",),
        path_params={"prefix": {"type": "string", "pattern": PREFIX_PATTERN}},
        extra_responses={404: "no key with this prefix"},
    ),
]
