"""Hold a test's first template renderings in their render threads, to see what the event loop does meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from notifier.engine import render

HOLD_LIMIT = 10.0  # seconds: only what a test that fails waits before it reports, never a measure of speed


class HeldRendering:
    """Replaces ``render.render_bounded``: the first ``renderings`` renderings (one by default; two hold both
    render threads) wait until ``release()`` (at most ``HOLD_LIMIT``), and each says in ``events`` whether it was
    released or gave up; the test adds its own events beside."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, renderings: int = 1) -> None:
        self.events: list[str] = []
        self._lock, self._to_hold = threading.Lock(), renderings
        self._started, self._released = threading.Event(), threading.Event()
        original = render.render_bounded

        def held(template: Any, context: Any) -> str:
            with self._lock:
                hold = self._to_hold > 0
                self._to_hold -= hold
                if hold and self._to_hold == 0:
                    self._started.set()
            if hold:
                waited = self._released.wait(HOLD_LIMIT)
                self.events.append("rendering released" if waited else "rendering gave up waiting")
            return original(template, context)

        monkeypatch.setattr(render, "render_bounded", held)

    async def started(self) -> bool:
        """Wait until every rendering to hold is being held."""
        return await asyncio.to_thread(self._started.wait, HOLD_LIMIT)

    def release(self) -> None:
        self._released.set()
