"""Scheduling: notices with ``send_at`` start on time, recurring notices fire from cron expressions.

Only the process that leads the scheduling (``engine.leadership``: an advisory lock on PostgreSQL,
every process on SQLite) runs the recurring notices' jobs; every process keeps its own wake-ups.

A notice with a future ``send_at`` waits in ``approved``; the fan-out's claim takes it once the
clock passes ``send_at``, so it starts after a restart too, and exactly once (the claim is a leased
UPDATE). The scheduler adds a one-off job at the next ``send_at`` that wakes the engine on time
instead of at its next poll.

Recurring notices (a weekly digest) live in ``recurring_notices``: a NoticeIn and a five-field cron
expression in ``server.timezone``, approved as a series under the approval rules (``notifier.approval``):
registering or revising one fixes how many distinct approvers it needs, and it fires no slot until they
have approved that revision. Each approved series gets an APScheduler cron job. Firing a slot first
inserts ``job_runs(job_key)``, whose primary key lets exactly one process win the slot even when several
schedulers run; the notice it creates records the series' approvals as its decisions, is approved at once
and carries the key as its idempotency key. On taking the lead every approved series' latest slot within
``CATCH_UP_SECONDS`` (and after its approval) is fired, so a slot missed while no process led goes out once
after the restart or the takeover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from notifier.config import ApprovalConfig
from notifier.domain.enums import NoticeState
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import NoticeIn
from notifier.engine.context import EngineContext
from notifier.engine.control import check_renders
from notifier.engine.render import DEFAULT_TEMPLATE, Renderer
from notifier.store import Store
from notifier.store.database import Row

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 3600
SYNC_SECONDS = 60


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=timezone)
    except ValueError as exc:
        raise InvalidInput("invalid cron expression", [FieldError("cron", str(exc))]) from None


def latest_slot(trigger: CronTrigger, now: datetime, since: datetime) -> datetime | None:
    """The last time the trigger fires in (since, now], or None."""
    slot = None
    fire = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    while fire is not None and fire <= now:
        slot = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return slot


def slot_key(recurring_id: int, slot: datetime) -> str:
    return f"recurring-{recurring_id}-{slot.astimezone(UTC):%Y%m%dT%H%M}"


async def add_recurring_notice(
    store: Store, rules: ApprovalConfig, notice: NoticeIn, *, department: str, cron: str, actor: str
) -> int:
    """Register a notice to be issued at every time ``cron`` names, once its approvers have approved it
    (``approval.approve_recurring``); its id. Refused like a new notice (``check_renders``) when its template
    is unknown or does not render with its data."""
    cron_trigger(cron, "UTC")
    await check_renders(store, notice, department, Renderer())
    body = notice.model_dump(mode="json", exclude={"send_at", "expires_at"})
    required = rules.required(department, notice.severity)
    async with store.db.transaction():
        recurring_id = await store.insert_recurring_notice(department, cron, body, actor, required)
        detail = {"cron": cron, "approvals_required": required}
        await store.audit(actor, "recurring.create", "recurring_notice", recurring_id, detail)
    return recurring_id


async def revise_recurring_notice(
    store: Store, rules: ApprovalConfig, recurring_id: int, notice: NoticeIn, *, cron: str, actor: str
) -> Row:
    """Change a series' notice or cron expression: a new revision, which fires nothing until approved again."""
    cron_trigger(cron, "UTC")
    series = await store.get_recurring_notice(recurring_id)
    await check_renders(store, notice, series["department"], Renderer())
    body = notice.model_dump(mode="json", exclude={"send_at", "expires_at"})
    required = rules.required(series["department"], notice.severity)
    return await store.revise_recurring_notice(recurring_id, notice=body, cron=cron, required=required, actor=actor)


async def fire_recurring(ctx: EngineContext, recurring: Row, slot: datetime) -> int | None:
    """Issue one slot of a recurring notice; the new notice's id, or None if the slot was fired before."""
    key = slot_key(recurring["id"], slot)
    actor = f"recurring:{recurring['id']}"
    async with ctx.store.db.transaction():
        # the series as it is now: revised since the scheduler read it, it waits for its new approval
        series = await ctx.store.get_recurring_notice(recurring["id"])
        if not series["active"] or series["approved_at"] is None:
            return None
        if not await ctx.store.claim_job_run(key, ctx.worker):
            return None
        notice_in = NoticeIn.model_validate_json(series["notice"])
        # each firing renders with the template's latest version; one that no longer renders is stopped,
        # with its reason, at fan-out
        version = await ctx.store.template_version(notice_in.template or DEFAULT_TEMPLATE)
        notice, _ = await ctx.store.create_notice(
            notice_in,
            department=series["department"],
            created_by=None,
            actor=actor,
            idempotency_key=key,
            template_version=version.version if version else None,
        )
        approvals = await ctx.store.recurring_approvals(series["id"], series["revision"])
        await ctx.store.record_series_approval(notice.id, series, approvals)
        await ctx.store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor=actor)
    log.info("recurring notice %s fired as notice %s", recurring["id"], notice.id)
    return notice.id


class NoticeScheduler:
    """APScheduler jobs of one process: recurring notices, and a wake-up at the next send_at."""

    def __init__(self, ctx: EngineContext, wake: Callable[[], None]) -> None:
        self.ctx = ctx
        self.wake = wake
        self.timezone = ctx.settings.server.timezone
        self.scheduler = AsyncIOScheduler(timezone=self.timezone)

    async def start(self) -> None:
        """Start the wake-ups at the next send_at; the recurring notices wait for ``lead``."""
        self.scheduler.start()

    async def lead(self) -> None:
        """This process leads the scheduling (``engine.leadership``): fire the slots missed meanwhile, then
        keep one cron job per recurring notice."""
        await self.catch_up()
        self.scheduler.add_job(self.sync, "interval", seconds=SYNC_SECONDS, id="sync-recurring",
                               replace_existing=True)
        await self.sync()

    async def step_down(self) -> None:
        """Another process leads now: drop the recurring notices' jobs (the send_at wake-ups stay)."""
        for job in self.scheduler.get_jobs():
            if job.id == "sync-recurring" or job.id.startswith("recurring-"):
                job.remove()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.clock(), UTC)

    async def catch_up(self) -> list[int]:
        """Fire each recurring notice's latest slot of the last hour that no process fired."""
        fired = []
        now = self.now()
        for recurring in await self.ctx.store.active_recurring_notices():
            approved = datetime.fromisoformat(recurring["approved_at"])  # no slot before its approval
            since = max(now - timedelta(seconds=CATCH_UP_SECONDS), approved)
            slot = latest_slot(cron_trigger(recurring["cron"], self.timezone), now, since)
            if slot is not None and (notice_id := await fire_recurring(self.ctx, recurring, slot)) is not None:
                fired.append(notice_id)
        if fired:
            self.wake()
        return fired

    async def sync(self) -> None:
        """Match the cron jobs to the recurring_notices table."""
        wanted: dict[str, Row] = {f"recurring-{r['id']}": r for r in await self.ctx.store.active_recurring_notices()}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("recurring-") and job.id not in wanted:
                job.remove()
        for job_id, recurring in wanted.items():
            self.scheduler.add_job(
                self._fire_due,
                cron_trigger(recurring["cron"], self.timezone),
                args=[recurring["id"]],
                id=job_id,
                replace_existing=True,
                coalesce=True,
                misfire_grace_time=CATCH_UP_SECONDS,
            )

    async def wake_at_next_send_at(self) -> None:
        """Schedule a wake-up at the earliest future send_at of an approved notice."""
        next_send_at = await self.ctx.store.next_send_at(self.ctx.clock())
        if next_send_at is not None and self.scheduler.running:
            self.scheduler.add_job(
                self._wake_job,
                DateTrigger(run_date=datetime.fromisoformat(next_send_at)),
                id="next-send-at",
                replace_existing=True,
                misfire_grace_time=None,
            )

    async def _wake_job(self) -> None:
        self.wake()

    async def _fire_due(self, recurring_id: int) -> Any:
        rows = [r for r in await self.ctx.store.active_recurring_notices() if r["id"] == recurring_id]
        now = self.now()
        slot = rows and latest_slot(cron_trigger(rows[0]["cron"], self.timezone), now, now - timedelta(minutes=5))
        if rows and slot and await fire_recurring(self.ctx, rows[0], slot) is not None:
            self.wake()
