"""The whole service (HTTP API, hooks and engine) on 127.0.0.1, as ``notifier serve`` runs it, for benchmarks."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from channels.base import Channel
from notifier.api import create_app
from notifier.api.keys import ENGINE, STORE
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Service:
    app: web.Application
    url: str

    @property
    def engine(self) -> Engine:
        engine = self.app[ENGINE]
        assert engine is not None
        return engine

    @property
    def store(self) -> Store:
        return self.app[STORE]


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    *,
    channels: Callable[[], dict[str, Channel]] | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Service]:
    """Serve on ``settings.server`` host and port; the engine's channels from config unless ``channels``
    builds them, its clock ``clock``. The engine stops (finishing its batches) before the server."""
    from channels import load_channels

    async def engine_factory(app: web.Application) -> Engine:
        engine = Engine(app[STORE], settings, channels() if channels else load_channels(settings), clock=clock)
        await engine.start()
        return engine

    app = create_app(settings, engine_factory=engine_factory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port, backlog=1024).start()
    try:
        yield Service(app, f"http://{settings.server.host}:{settings.server.port}")
    finally:
        engine = app.get(ENGINE)
        if engine is not None:
            await engine.stop(grace=10)
        await runner.cleanup()
