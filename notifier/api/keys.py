"""Typed application keys: the app's resources, opened in cleanup_ctx (no module-level state)."""

from __future__ import annotations

from aiohttp import web

from notifier.config import Settings
from notifier.engine import Engine
from notifier.engine.render import Renderer
from notifier.engine.wakeups import WorkSignals
from notifier.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENGINE: web.AppKey[Engine | None] = web.AppKey("engine")  # None when the process runs no engine
# the engine's renderer, or one of the app's own when the process runs no engine: its compiled templates kept
RENDERER = web.AppKey("renderer", Renderer)
# the announcing side of LISTEN / NOTIFY when the process runs no engine (``notifier.api.wake``)
WORK_SIGNALS: web.AppKey[WorkSignals | None] = web.AppKey("work_signals")
