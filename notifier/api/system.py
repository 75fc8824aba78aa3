"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from notifier.api.keys import STORE
from notifier.api.routing import Answer, Route, json_response

OPENAPI = web.AppKey("openapi", dict)
METRICS = web.AppKey("metrics_registry", object)
FAILED_NOTICES = web.AppKey("failed_notices_gauge", Gauge)


def failed_notices_gauge(registry: CollectorRegistry) -> Gauge:
    """Notices the service stopped by itself (their template no longer rendered), per department: read from
    the database at each scrape, so a stop made by a worker in another process counts too."""
    return Gauge(
        "notifier_notices_failed",
        "Notices stopped before sending because their template no longer renders (failure_reason set)",
        ["department"],
        registry=registry,
    )


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
    failed = request.app[FAILED_NOTICES]
    counts = await request.app[STORE].failed_notices_per_department()
    failed.clear()
    for department, count in counts.items():
        failed.labels(department).set(count)
    body = generate_latest(request.app[METRICS])  # type: ignore[arg-type]
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


_HEALTH = {
    "type": "object",
    "properties": {"status": {"enum": ["ok", "unavailable"]}, "database": {"type": "string"}},
    "required": ["status", "database"],
}

ROUTES = [
    Route("GET", "/healthz", healthz, "Liveness and database check", "system", public=True,
          success=Answer("the service and its database answer", "application/json", _HEALTH),
          extra_responses={503: Answer("the database does not answer", "application/json", _HEALTH)}),
    Route("GET", "/openapi.json", openapi, "This document", "system", public=True,
          success=Answer("the OpenAPI 3.1 document", "application/json", {"type": "object"})),
    Route("GET", "/metrics", metrics, "Prometheus metrics", "system", public=True,
          success=Answer("Prometheus text exposition format 0.0.4", "text/plain", {"type": "string"})),
]  # fmt: skip
