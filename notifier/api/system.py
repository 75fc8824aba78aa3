"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notifier.api.keys import STORE
from notifier.api.routing import Route, json_response

OPENAPI = web.AppKey("openapi", dict)
METRICS = web.AppKey("metrics_registry", object)


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    try:
        await store.db.fetch_all("list_departments")
    except Exception as exc:  # the health check reports, it does not raise
        return json_response({"status": "unavailable", "database": type(exc).__name__}, 503)
    return json_response({"status": "ok", "database": store.db.dialect})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])  # type: ignore[arg-type]
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = [
    Route("GET", "/healthz", healthz, "Liveness and database check", "system", public=True),
    Route("GET", "/openapi.json", openapi, "This document", "system", public=True),
    Route("GET", "/metrics", metrics, "Prometheus metrics", "system", public=True),
]
