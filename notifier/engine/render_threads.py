"""Template renderings run here, off the event loop: a request's renderings may hold a processor for up to
``MAX_REQUEST_SECONDS`` (``template_sandbox``), and on the loop's thread every other request, the console and
the engine would wait that long.

``RENDER_THREADS`` threads (``ThreadPoolExecutor``'s, started on first use) take the renderings in turn: the
sandbox bounds each rendering by its own thread's processor time, so a thread is as bounded as the loop was,
and a burst of heavy requests waits for the threads instead of taking more of them. The caller's context goes along
(``contextvars``): a rendering spends from the budget of the request that asked for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

RENDER_THREADS = 2

_P = ParamSpec("_P")
_T = TypeVar("_T")
_THREADS = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="render")

__all__ = ["RENDER_THREADS", "rendered"]


async def rendered(work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``work(*args, **kwargs)`` (renderings, synchronous) run in a render thread, in the caller's context."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_THREADS, call)
