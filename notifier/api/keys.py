"""Typed application keys: the app's resources, opened in cleanup_ctx (no module-level state)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notifier.config import Settings
from notifier.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", Any)  # notifier.engine.Engine, or None when the process runs no engine
