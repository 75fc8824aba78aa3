"""How many spreadsheets one process reads at a time.

A workbook within the reader's bounds (``subscribers.sheets``: 16 MB of shared texts and styles, a 256 MB sheet)
can still hold a few hundred MB of the process while it is read. The web process reads uploads (the console's
resident import, rosters through the API and the console) side by side, so a handful of such files at once would
add up to gigabytes; it reads at most ``SHEETS_AT_ONCE`` at a time, and the others wait for their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

SHEETS_AT_ONCE = 2


@dataclass
class SheetSlots:
    free: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SHEETS_AT_ONCE))
    reading: int = 0
    waiting: int = 0


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SheetSlots] = weakref.WeakKeyDictionary()


def sheet_slots() -> SheetSlots:
    """The running event loop's slots (a semaphore belongs to one loop; the tests run many)."""
    loop = asyncio.get_running_loop()
    slots = _BY_LOOP.get(loop)
    if slots is None:
        slots = _BY_LOOP[loop] = SheetSlots()
    return slots


@contextlib.asynccontextmanager
async def sheet_slot() -> AsyncIterator[None]:
    """Hold one of the process's spreadsheet slots for the ``async with`` block, waiting for one if need be."""
    slots = sheet_slots()
    slots.waiting += 1
    try:
        await slots.free.acquire()
    finally:
        slots.waiting -= 1
    slots.reading += 1
    try:
        yield
    finally:
        slots.reading -= 1
        slots.free.release()
