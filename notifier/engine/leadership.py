"""One scheduler at a time: leadership among the processes of one database.

On PostgreSQL the leader is the process holding a session-level advisory lock (``pg_try_advisory_lock``)
on a connection of its own, outside the pool: the lock lives exactly as long as that connection. A leader
killed outright loses it the moment PostgreSQL sees the connection close (at once on one host; across a
network within the TCP keepalive set below), and a standby, trying every ``retry_seconds``, takes it over
within seconds. The leader checks its connection at the same pace and steps down as soon as a check fails.

A moment with two leaders (one that lost its connection and has not noticed yet) does no harm: a firing
is backed by the database, not by the lock. Each slot of a recurring notice is first inserted into
``job_runs`` (its primary key lets one process win it) and the notice it creates carries the slot's key as
its idempotency key; a notice with ``send_at`` is started by the fan-out's leased claim. Leadership only
keeps the others from doing the work twice and racing for it.

On SQLite every process is leader (``SoleLeader``): one host, and the same keys keep each firing single.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]

RETRY_SECONDS = 1.0
"""How often a standby tries the lock, and the leader checks its connection."""

SESSION = {
    "application_name": "notifier-leadership",
    # the server closes the leader's session (and frees the lock) ~11 s after its host stops answering
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(f"notifier:{name}".encode()).digest()[:8], "big", signed=True)


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    async def start(self, on_gain: Callback, on_loss: Callback) -> None: ...

    async def stop(self) -> None: ...


class SoleLeader:
    """Every process leads (SQLite: one host; the database's keys keep each firing single)."""

    def __init__(self) -> None:
        self._leading = False
        self._on_loss: Callback | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def start(self, on_gain: Callback, on_loss: Callback) -> None:
        self._leading, self._on_loss = True, on_loss
        await on_gain()

    async def stop(self) -> None:
        if self._leading and self._on_loss is not None:
            self._leading = False
            await self._on_loss()


class AdvisoryLockLeader:
    """Leadership by a PostgreSQL advisory lock held on a dedicated connection (asyncpg)."""

    def __init__(self, dsn: str, name: str = "scheduler", *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.dsn, self.key, self.retry_seconds = dsn, lock_key(name), retry_seconds
        self._leading = False
        self._task: asyncio.Task[None] | None = None
        self._conn: object | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def start(self, on_gain: Callback, on_loss: Callback) -> None:
        self._task = asyncio.create_task(self._run(on_gain, on_loss), name="leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, on_gain: Callback, on_loss: Callback) -> None:
        import asyncpg

        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, server_settings=SESSION, timeout=10)
                tries = 0
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                    if not tries:
                        log.info("another process leads the scheduling; this one stands by")
                    tries += 1
                    await asyncio.sleep(self.retry_seconds)  # the lock frees with the leader's session
                self._leading = True
                log.info("this process now leads the scheduling")
                await on_gain()
                while True:  # a failed check (the connection or the server gone) ends the leadership
                    await asyncio.sleep(self.retry_seconds)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.retry_seconds * 5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduling leadership: %s; trying again in %.0f s", type(exc).__name__,
                            self.retry_seconds)
            finally:
                if self._leading:
                    self._leading = False
                    log.info("this process no longer leads the scheduling")
                    await asyncio.shield(on_loss())
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))  # ends the session: the lock is free
            await asyncio.sleep(self.retry_seconds)


def leadership_for(url: str, name: str = "scheduler") -> Leadership:
    """The leadership of a ``[database] url``: an advisory lock on PostgreSQL, every process on SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return AdvisoryLockLeader(url, name)
    return SoleLeader()
