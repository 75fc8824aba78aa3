"""API-key authentication and the role/department checks every handler applies."""

from __future__ import annotations

import re

from aiohttp import web

from notifier.api.keys import STORE
from notifier.domain.enums import Role
from notifier.domain.errors import Forbidden, Unauthenticated
from notifier.domain.models import ApiKeyInfo

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


async def authenticate(request: web.Request) -> ApiKeyInfo:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated()
    if len(token) > 200 or not _BEARER_TOKEN.fullmatch(token):
        raise Unauthenticated("the API key is unknown or revoked")
    key = await request.app[STORE].authenticate(token)
    if key is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return key


async def require(request: web.Request, *roles: Role) -> ApiKeyInfo:
    """The caller's key, checked against the roles allowed (none given: any role)."""
    key = await authenticate(request)
    if roles and key.role not in roles and key.role is not Role.ADMIN:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"this action needs the role {allowed}; the key has {key.role.value}")
    return key


def actor(key: ApiKeyInfo) -> str:
    return f"apikey:{key.id}"
