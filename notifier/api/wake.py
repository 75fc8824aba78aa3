"""Work made through the API (an approval, a cancel, an answer, a resident's code) is announced at once.

In a process that runs an engine, ``Engine.wake`` wakes its own workers and, on PostgreSQL, the other
processes' (``engine.wakeups``). An API node runs none (``engine.workers = 0``): it keeps a connection
that only announces (``work_signals_ctx``), so the workers elsewhere still start without waiting for
their next poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from notifier.api.keys import ENGINE, SETTINGS, WORK_SIGNALS
from notifier.engine.wakeups import work_signals_for


def wake(app: web.Application) -> None:
    """Something may be due now: tell this process's engine, or the other processes when it runs none."""
    engine = app.get(ENGINE)
    if engine is not None:
        engine.wake()
        return
    signals = app.get(WORK_SIGNALS)
    if signals is not None:
        signals.announce()


async def work_signals_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the engine's start-up: the announcing connection of a process without an engine."""
    if app.get(ENGINE) is not None:
        app[WORK_SIGNALS] = None
        yield
        return
    signals = work_signals_for(app[SETTINGS].database.url)
    await signals.start(None)
    app[WORK_SIGNALS] = signals
    try:
        yield
    finally:
        await signals.stop()
