"""The aiohttp application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from notifier import console
from notifier import web as pages
from notifier.api import (
    apikeys,
    audit,
    catalog,
    cloud_sms_hooks,
    cloud_sms_replies,
    feedback,
    follow_up,
    hooks,
    notices,
    rosters,
    subscribers,
    system,
    wechat_hooks,
)
from notifier.api import cap as cap_api
from notifier.api import reports as report_api
from notifier.api.draft_preview import PRINTOUT_IMAGES
from notifier.api.draft_preview import ROUTES as DRAFT_PREVIEW_ROUTES
from notifier.api.keys import ENGINE, RENDERER, SETTINGS, STORE
from notifier.api.openapi import build_openapi
from notifier.api.problems import problem_middleware
from notifier.api.routing import Route
from notifier.api.templates import ROUTES as TEMPLATE_ROUTES
from notifier.api.wake import work_signals_ctx
from notifier.config import Settings
from notifier.console.errors import console_error_middleware
from notifier.engine import Engine
from notifier.engine.message_preview import PrintoutImages
from notifier.engine.render import Renderer
from notifier.engine.template_sandbox import request_budget
from notifier.logs import install_bad_request_filter
from notifier.store import Store, open_database
from notifier.web import kiosk

ALL_ROUTES: list[Route] = [
    *system.ROUTES,
    *catalog.ROUTES,
    *subscribers.ROUTES,
    *notices.ROUTES,
    *DRAFT_PREVIEW_ROUTES,
    *TEMPLATE_ROUTES,
    *rosters.ROUTES,
    *apikeys.ROUTES,
    *audit.ROUTES,
    *report_api.ROUTES,
    *cap_api.ROUTES,
    *follow_up.ROUTES,
    *feedback.ROUTES,
    *hooks.ROUTES,
    *wechat_hooks.ROUTES,
    *cloud_sms_hooks.ROUTES,
    *cloud_sms_replies.ROUTES,
    *pages.ROUTES,
]
EngineFactory = Callable[[web.Application], Awaitable[Engine | None]]


def _metrics_middleware(registry: CollectorRegistry) -> Callable[..., Awaitable[web.StreamResponse]]:
    requests = Counter("notifier_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("notifier_http_request_seconds", "HTTP request latency", ["route"], registry=registry)

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        requests.labels(request.method, route, str(response.status)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        return response

    return middleware


@web.middleware
async def _render_budget_middleware(
    request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """All the template renderings of one request share one budget (``template_sandbox.RenderBudget``). A task
    a request starts to outlive it must start in a context of its own (the kiosk's list readers do)."""
    with request_budget():
        return await handler(request)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    engine_factory: EngineFactory | None = None,
    extra_routes: Sequence[Route] = (),
) -> web.Application:
    """Build the app. Without ``store``, the database named in settings is opened (and migrated) on start-up."""
    install_bad_request_filter()
    registry = CollectorRegistry()
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[
            _metrics_middleware(registry),
            problem_middleware,
            console_error_middleware,
            _render_budget_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[system.METRICS] = registry
    app[system.FAILED_NOTICES] = system.failed_notices_gauge(registry)
    app[notices.UNOPENED_ADAPTERS] = notices.UnopenedAdapters()
    app[PRINTOUT_IMAGES] = PrintoutImages()
    routes = [*ALL_ROUTES, *(route for route in extra_routes if route not in ALL_ROUTES)]
    app[system.OPENAPI] = build_openapi(routes)
    named: set[str] = set()
    for route in routes:
        name = route.handler.__name__
        app.router.add_route(route.method, route.path, route.handler, name=None if name in named else name)
        named.add(name)
    console.setup(app)

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        if store is not None:
            app[STORE] = store
            yield
            return
        db = await open_database(settings.database.url, pool_size=settings.database.pool_size)
        await db.migrate()
        app[STORE] = Store(db)
        try:
            yield
        finally:
            await db.close()

    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        engine = await engine_factory(app) if engine_factory else None
        app[ENGINE] = engine
        app[RENDERER] = engine.ctx.templates if engine else Renderer(public_url=settings.server.public_url)
        yield

    app.cleanup_ctx.extend([database_ctx, kiosk.lists_ctx, console.residents.imports_ctx, engine_ctx, work_signals_ctx])
    return app
