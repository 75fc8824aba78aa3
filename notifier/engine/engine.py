"""The Engine: the five steps of a notice's journey, run by asyncio tasks in one process.

    target  -> subscribers.targeting (who, on which channel)      fanout.fan_out_next
    render  -> render.Renderer (once per channel kind)            fanout.render_notice
    enqueue -> deliveries in the database, in chunks              fanout.fan_out
    claim/send -> leased batches through the adapters             dispatch.dispatch_alias
    record  -> results, retries, fallbacks                        outcomes.record_results

``start()`` registers the process's worker id, runs one planner task (housekeeping every ``CHORES_EVERY``
seconds while it finds nothing, fan-out of one notice per pass, scheduling), ``engine.workers`` worker
tasks per alias and a heartbeat (``heartbeat``); ``stop()`` gives back what the workers had not finished;
``wake()`` lets the API say "something is due" so nobody waits for the next poll, and on PostgreSQL tells
the other processes too (``wakeups``: LISTEN / NOTIFY). A worker that has written its last results and finds
nothing more to claim wakes the planner, so a notice is marked done when its last batch is recorded, not at the
next poll. Tests use ``run_once()`` /
``run_until_idle()`` (burst mode) with an injected clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from channels.base import Channel
from notifier.config import Settings
from notifier.engine.context import EngineContext, new_worker_id
from notifier.engine.dispatch import Unrecorded, dispatch_alias, dispatch_batch, write_alone
from notifier.engine.fanout import fan_out_next
from notifier.engine.heartbeat import beat, release
from notifier.engine.housekeeping import housekeeping
from notifier.engine.leadership import leadership_for
from notifier.engine.receipts import ReceiptOutcome, record_receipt
from notifier.engine.retry import RetryPolicy
from notifier.engine.scheduling import NoticeScheduler
from notifier.engine.wakeups import work_signals_for
from notifier.store import Store

log = logging.getLogger(__name__)

CHORES_EVERY = 1.0
"""Seconds between the planner's housekeeping passes (leases, expiry, unconfirmed sends, print jobs) while
they find nothing to do; never more often than the poll interval. Between them each planner pass still
fans out approved notices and, when a worker has handled deliveries since, marks finished notices done."""


class Engine:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        channels: dict[str, Channel],
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        worker_id: str | None = None,
    ) -> None:
        self.ctx = EngineContext(
            store=store,
            settings=settings,
            channels=channels,
            clock=clock,
            worker=worker_id or new_worker_id(),
            retry=RetryPolicy.from_config(settings.engine, jitter),
        )
        self.scheduler = NoticeScheduler(self.ctx, self.wake)
        self.leadership = leadership_for(settings.database.url)
        self.signals = work_signals_for(settings.database.url)
        self._wakeup = asyncio.Event()  # new work: the planner and the idle workers look at once
        self._plan_wakeup = asyncio.Event()  # the planner's own: also set when a worker's queue runs dry
        self._stopping = False
        self._planner: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._handled = False  # a worker handled deliveries since the planner last looked for finished notices

    def wake(self) -> None:
        """Tell the engine that something may be due (an approval, a cancel, a fan-out): no poll wait; and
        the engines of the other processes of the database too (``wakeups``)."""
        self._wakeup.set()
        self._plan_wakeup.set()
        self.signals.announce()

    def _woken(self) -> None:
        """Another process announced new work."""
        self._wakeup.set()
        self._plan_wakeup.set()

    async def heartbeat(self) -> None:
        """Tell other processes this one is alive (registering it the first time)."""
        await beat(self.ctx)

    async def run_once(self) -> int:
        """One pass of every step: a heartbeat when due, chores, fan-out of every due notice, one batch per alias."""
        await beat(self.ctx, force=False)
        done = await housekeeping(self.ctx)
        while await fan_out_next(self.ctx) is not None:
            done += 1
        for alias in self.ctx.channels:
            done += await dispatch_alias(self.ctx, alias)
        return done

    async def run_until_idle(self, max_passes: int = 100_000) -> int:
        """Burst mode: run passes until one finds nothing to do; the work done in all."""
        total = 0
        for _ in range(max_passes):
            done = await self.run_once()
            if not done:
                return total
            total += done
        raise RuntimeError(f"engine still busy after {max_passes} passes")

    async def record_receipt(
        self, alias: str, provider_message_id: str, status: str, detail: str | None = None
    ) -> ReceiptOutcome:
        """Apply a receipt that came in on ``alias`` as the hooks do: to a delivery of ``alias`` or of a failover
        alias sending through it."""
        owners = self.ctx.settings.failover_owners(alias)
        return await record_receipt(
            self.ctx.store, alias, provider_message_id, status, detail, context=self.ctx, owners=owners
        )

    async def start(self) -> None:
        names = await self.ctx.store.printable_area_names()
        for channel in self.ctx.channels.values():
            channel.use_area_names(names)
            await channel.open()
        await self.scheduler.start()
        await self.leadership.start(self.scheduler.lead, self.scheduler.step_down)
        await self.signals.start(self._woken)
        self._stopping = False
        try:
            await self.heartbeat()
        except Exception:  # a database locked or away at start: the beat loop registers this worker later
            log.warning("engine %s could not register its first heartbeat; trying again at the next beat",
                        self.ctx.worker, exc_info=True)
        self._heart = asyncio.create_task(self._beat_loop(), name="engine-heartbeat")
        self._planner = asyncio.create_task(self._plan_loop(), name="engine-planner")
        # each channel alias has its own workers, so a slow one (printouts) never holds up another (SMS)
        members = {member for channel in self.ctx.channels.values() for member in channel.member_aliases()}
        routed = [alias for alias in self.ctx.channels if alias not in members]
        self._workers = [
            asyncio.create_task(self._work_loop(alias), name=f"engine-worker-{alias}-{i}")
            for alias in routed
            for i in range(self.ctx.settings.engine.workers)
        ]
        log.info(
            "engine %s started with %d workers for each of %d channels",
            self.ctx.worker,
            self.ctx.settings.engine.workers,
            len(routed),
        )

    async def stop(self, grace: float | None = None) -> None:
        """Let each worker finish the batch it holds (its result write is shielded) within ``grace`` seconds
        (default: the lease), then stop, giving back at once the deliveries of a batch not finished."""
        self._stopping = True
        self._wakeup.set()
        self._plan_wakeup.set()
        if self._planner is not None:
            self._planner.cancel()
        tasks = [t for t in (self._planner, *self._workers) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace or self.ctx.settings.engine.lease_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._planner, self._workers = None, []
        if self._heart is not None:
            self._heart.cancel()
            await asyncio.gather(self._heart, return_exceptions=True)
            self._heart = None
            await release(self.ctx)
        await self.signals.stop()
        await self.leadership.stop()
        self.scheduler.shutdown()
        for channel in self.ctx.channels.values():
            await channel.close()
        self.ctx.errors.report()
        log.info("engine %s stopped", self.ctx.worker)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.engine.heartbeat_seconds)
            try:
                await self.heartbeat()
            except Exception:
                log.exception("engine heartbeat failed; trying again at the next beat")

    async def _plan_loop(self) -> None:
        chores_at = 0.0  # monotonic time of the next full housekeeping pass
        while not self._stopping:
            try:
                busy = 0
                if time.monotonic() >= chores_at:
                    self._handled = False
                    busy = await housekeeping(self.ctx)
                    # while the chores find work they run on every pass, else every CHORES_EVERY seconds
                    chores_at = (
                        0.0 if busy else time.monotonic() + max(self.ctx.settings.engine.poll_interval, CHORES_EVERY)
                    )
                elif self._handled:
                    self._handled = False  # before the query: a batch recorded meanwhile sets it again
                    busy = len(await self.ctx.store.finish_notices())
                # one notice per pass: while approvals keep coming, finishing notices and the chores still
                # get their turn between two fan-outs (a busy pass is followed at once by the next)
                if await fan_out_next(self.ctx) is not None:
                    busy += 1
                    self.wake()
                await self.scheduler.wake_at_next_send_at()
            except Exception:
                log.exception("engine planner pass failed; retrying after the poll interval")
                busy = 0
            if not busy:
                await self._idle(self.ctx.settings.engine.poll_interval, self._plan_wakeup)

    async def _work_loop(self, alias: str) -> None:
        """Batch after batch: the results of each are written in the transaction that claims the next
        (``dispatch.dispatch_batch``), one write transaction a batch instead of two; the last batch's when
        the next claim finds nothing, or the worker stops."""
        unrecorded: Unrecorded | None = None
        try:
            while not self._stopping:
                try:
                    handled, unrecorded = await dispatch_batch(self.ctx, alias, unrecorded)
                    if handled:
                        self._handled = True  # the planner looks for finished notices on its next pass
                        if unrecorded is None:  # results written, nothing more claimed: a notice may be done
                            self._plan_wakeup.set()
                except Exception:
                    log.exception("engine worker pass on %s failed; retrying after the poll interval", alias)
                    handled, unrecorded = 0, None  # its write failed past the lease: that batch is sent again
                if not handled and not self._stopping:
                    await self._idle(self._worker_wait(alias), self._wakeup)
        finally:  # stopping, or cancelled: the results in hand are written before the leases are given back
            if unrecorded is not None and not unrecorded.written:
                await write_alone(self.ctx, alias, unrecorded)

    def _worker_wait(self, alias: str) -> float:
        """The poll interval, or longer while the alias is out of rate-limit tokens."""
        limiter = self.ctx.limiters.get(alias)
        wait = limiter.wait_time(self.ctx.clock()) if limiter is not None else 0.0
        return max(self.ctx.settings.engine.poll_interval, wait)

    @staticmethod
    async def _idle(seconds: float, wakeup: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wakeup.wait()
        wakeup.clear()
