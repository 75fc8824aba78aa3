"""Running the service: the API with workers (``serve``) or workers alone (``worker``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from notifier.api import create_app
from notifier.api.keys import STORE
from notifier.config import Settings, require_signing_secret
from notifier.engine import Engine
from notifier.store import Store, open_database

log = logging.getLogger("notifier.server")


async def start_engine(settings: Settings, store: Store) -> Engine:
    from channels import load_channels
    from notifier.engine.context import new_worker_id
    from notifier.engine.shared_tokens import DatabaseTokenCaches

    worker = new_worker_id()
    # the WeChat and WeCom tokens are shared with every other process of the database, not fetched by each
    channels = load_channels(settings, {"token_caches": DatabaseTokenCaches(store, worker)})
    engine = Engine(store, settings, channels, worker_id=worker)
    await engine.start()
    return engine


def build_service(settings: Settings, *, demo: bool = False) -> web.Application:
    async def engine_factory(app: web.Application) -> Engine | None:
        if settings.engine.workers == 0:
            return None
        return await start_engine(settings, app[STORE])

    app = create_app(settings, engine_factory=engine_factory)

    async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
        if demo:
            from notifier.demo import load_demo

            summary = await load_demo(app[STORE])
            log.info("demo data loaded: %s", summary)
        yield

    async def engine_stop_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        from notifier.api.keys import ENGINE

        engine = app.get(ENGINE)
        if engine is not None:
            await engine.stop()

    # demo data must be in place before the engine starts; the engine stops before the database closes
    app.cleanup_ctx.insert(1, demo_ctx)
    app.cleanup_ctx.append(engine_stop_ctx)
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log lines without query strings: hook tokens and unsubscribe tokens travel there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def serve(settings: Settings, *, demo: bool = False) -> int:
    require_signing_secret(settings, demo=demo)
    app = build_service(settings, demo=demo)
    print(f"notifier listening on http://{settings.server.host}:{settings.server.port}", flush=True)
    web.run_app(
        app, host=settings.server.host, port=settings.server.port, print=None, access_log_class=PathOnlyAccessLogger
    )
    return 0


async def _worker_main(settings: Settings) -> None:
    db = await open_database(settings.database.url, pool_size=settings.database.pool_size)
    await db.migrate()
    engine = await start_engine(settings, Store(db))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await engine.stop()
        await db.close()


def run_worker(settings: Settings) -> int:
    require_signing_secret(settings)
    asyncio.run(_worker_main(settings))
    return 0
