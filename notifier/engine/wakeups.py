"""New work is announced to every process of the database, so idle workers wake at once.

On PostgreSQL each engine LISTENs on the ``notifier_work`` channel over a connection of its own and, when it
fans a notice out or is told something is due (an approval through the API, a cancel), NOTIFYs it. A
notification wakes every other engine's planner and workers as ``Engine.wake`` wakes its own: no waiting
for the next poll. It is only a hint: a notification lost (a listener reconnecting, a process starting) costs
one poll interval, because every process still polls (``engine.poll_interval``) as the safety net. A
notification is sent after the work it announces is committed (NOTIFY from the listener's own connection,
outside any transaction), so the woken worker finds it.

A process that runs no engine (an API node, ``engine.workers = 0``) only announces: it starts the signals
without a listener (``start(None)``) and its API calls ``announce`` where an engine would be woken
(``notifier.api.wake``).

On SQLite there is one host and usually one process; the others keep polling (``PollingOnly``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

CHANNEL = "notifier_work"
RECONNECT_SECONDS = 1.0


class WorkSignals(Protocol):
    async def start(self, on_signal: Callable[[], None] | None) -> None:
        """Connect; call ``on_signal`` whenever another process announces work (None: announce only)."""
        ...

    def announce(self) -> None:
        """Tell the other processes that work is due (returns at once; sent in the background)."""
        ...

    async def flush(self) -> None:
        """Return once what was announced is sent (a process about to exit)."""
        ...

    async def stop(self) -> None: ...


class PollingOnly:
    """No notifications: the other processes find new work at their next poll."""

    async def start(self, on_signal: Callable[[], None] | None) -> None:
        return None

    def announce(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class PostgresWorkSignals:
    """LISTEN / NOTIFY on a dedicated asyncpg connection, reconnected when it drops."""

    def __init__(self, dsn: str, channel: str = CHANNEL) -> None:
        self.dsn, self.channel = dsn, channel
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._again = False  # announced while a NOTIFY was in flight: one more follows it
        self._sender: asyncio.Task[None] | None = None
        self.sent = self.received = 0

    async def start(self, on_signal: Callable[[], None] | None) -> None:
        listening = asyncio.Event()
        self._task = asyncio.create_task(self._run(on_signal, listening), name="work-signals")
        with contextlib.suppress(TimeoutError):  # a database away at start: the loop keeps trying
            await asyncio.wait_for(listening.wait(), 10)

    def announce(self) -> None:
        if self._conn is None:
            return
        if self._sender is not None and not self._sender.done():
            self._again = True  # one statement at a time on the connection: many in a burst wake once more
            return
        self._sender = asyncio.create_task(self._notify(), name="work-signal")

    async def flush(self) -> None:
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)

    async def stop(self) -> None:
        for task in (self._sender, self._task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._sender = None

    async def _notify(self) -> None:
        """NOTIFY, and once more while announcements came during it: work committed after the one in flight
        was sent may be missed by a listener that woke on it."""
        again = True
        while again and self._conn is not None:
            self._again = False
            try:
                await self._conn.execute("SELECT pg_notify($1, '')", self.channel)
                self.sent += 1
            except Exception as exc:  # the listener's loop reconnects; the others still poll
                log.warning("could not announce new work: %s", type(exc).__name__)
                return
            again = self._again

    async def _run(self, on_signal: Callable[[], None] | None, listening: asyncio.Event) -> None:
        import asyncpg

        def heard(*_: object) -> None:
            self.received += 1
            if on_signal is not None:
                on_signal()

        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=10, server_settings={"application_name": "notifier-wakeups"}
                )
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                if on_signal is not None:
                    await conn.add_listener(self.channel, heard)
                self._conn = conn
                listening.set()
                if on_signal is not None:
                    on_signal()  # anything announced while this process was not listening
                await lost.wait()
                log.warning("the connection listening for new work closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot listen for new work (%s); polling meanwhile", type(exc).__name__)
            finally:
                self._conn = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(RECONNECT_SECONDS)


def work_signals_for(url: str) -> WorkSignals:
    """NOTIFY / LISTEN on PostgreSQL; on SQLite nothing (the processes poll)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresWorkSignals(url)
    return PollingOnly()


async def announce_once(url: str) -> None:
    """Announce new work from a process that neither runs an engine nor serves (a command such as
    ``notifier notices approve``): connect, NOTIFY, disconnect."""
    signals = work_signals_for(url)
    await signals.start(None)
    try:
        signals.announce()
        await signals.flush()
    finally:
        await signals.stop()
