"""Template renderings run here, off the event loop: a request's renderings may hold a processor for up to
``MAX_REQUEST_SECONDS`` (``template_sandbox``), and on the loop's thread every other request, the console and
the engine would wait that long.

``RENDER_THREADS`` threads (``ThreadPoolExecutor``'s, started on first use) take the renderings in turn: the
sandbox bounds each rendering by its own thread's processor time, so a thread is as bounded as the loop was,
and a burst of heavy requests waits for the threads instead of taking more of them. The caller's context goes along
(``contextvars``): a rendering spends from the budget of the request that asked for it.

What waits for the threads is bounded for anonymous callers only: the public pages, feeds, kiosks and public CAP
documents render through ``rendered_for_public``, which takes at most ``PUBLIC_RENDERINGS`` renderings at once
(running or waiting, counted until the thread is done with one) and refuses the next with ``RenderThreadsBusy``
(answered 503 with ``Retry-After``). A flood of anonymous requests thus holds no more than that and delays a
staff member's preview or the engine's fan-out by at most that many renderings; those go through ``rendered``,
which anonymous load never refuses (their own callers are signed in, or the engine's own bounded batches).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

RENDER_THREADS = 2
PUBLIC_RENDERINGS = 2 * RENDER_THREADS  # anonymous renderings running or waiting at once; past it, refused
PUBLIC_RETRY_AFTER = 5  # seconds: PUBLIC_RENDERINGS renderings of at most MAX_REQUEST_SECONDS on the threads

_P = ParamSpec("_P")
_T = TypeVar("_T")
_THREADS = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="render")

__all__ = ["PUBLIC_RENDERINGS", "PUBLIC_RETRY_AFTER", "RENDER_THREADS", "RenderThreadsBusy", "rendered",
           "rendered_for_public"]  # fmt: skip


class RenderThreadsBusy(Exception):
    """An anonymous rendering refused: ``PUBLIC_RENDERINGS`` are running or waiting already."""

    retry_after = PUBLIC_RETRY_AFTER


class _PublicShare:
    """How many anonymous renderings the threads hold (running or waiting). A thread gives its rendering's place
    back when done with it, whichever event loop asked (a closed one included), hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = 0

    def take(self) -> None:
        with self._lock:
            if self.held >= PUBLIC_RENDERINGS:
                raise RenderThreadsBusy(f"{self.held} anonymous renderings are running or waiting")
            self.held += 1

    def give_back(self, _done: object = None) -> None:
        with self._lock:
            self.held -= 1


_PUBLIC = _PublicShare()  # one per process, as the threads are


async def rendered(work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``work(*args, **kwargs)`` (renderings, synchronous) run in a render thread, in the caller's context."""
    return await asyncio.wrap_future(_submitted(work, *args, **kwargs))


async def rendered_for_public(work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """As ``rendered``, for an anonymous caller: ``RenderThreadsBusy`` when the public share is taken. A rendering
    counts until its thread is done with it, also when its caller stopped waiting (a visitor who went away)."""
    _PUBLIC.take()
    try:
        submitted = _submitted(work, *args, **kwargs)
    except BaseException:
        _PUBLIC.give_back()
        raise
    submitted.add_done_callback(_PUBLIC.give_back)
    return await asyncio.wrap_future(submitted)


def _submitted(work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
    context = contextvars.copy_context()
    return _THREADS.submit(functools.partial(context.run, work, *args, **kwargs))
