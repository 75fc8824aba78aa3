"""Step 4 of a notice's journey: claim due deliveries under a lease, and send them in batches.

Before the provider call every delivery of the batch is ``sending`` with a lease in the database; after it,
the results are written in one shielded transaction (``record_batch``: ``outcomes.record_results`` and the
receipts that overtook the sends, ``receipts.apply_early_receipts``), tried again while the database refuses,
as long as the lease lasts (``keep_trying``). A running worker writes them in the transaction that claims its
next batch (``record_and_claim``): one write transaction a batch, not two. A worker that dies in between leaves its
claims to be taken back (``heartbeat``: within a few heartbeats, when the lease expires at the latest) and
claimed again, so at most the batch in flight at the crash can reach a resident twice; and not even those of
its messages a receipt already speaks for: a delivery claimed again whose receipt is stored under an id its
adapter chose before the send (``Channel.receipt_ids``) is recorded as sent from that receipt
(``already_sent``), not handed to the provider again. A batch is never larger than the adapter can answer
within the time it is given (``Channel.batch_limit``), and an adapter starts no request it could not finish
within that time (``channels.base.SendWindow``; such a message comes back ``Retry(started=False)`` and is queued
again at once, its try not counted), so a slow provider does not get a batch cut off and sent again whole.
Deliveries of a notice cancelled or expired (as the claiming statement read the notice) are skipped here,
before any provider call; a cancel also skips every delivery still queued, so only a batch claimed in the
moment before it can still go out. One path for both targets of a delivery: an alias of a
resident channel claims deliveries to residents' addresses, an alias of kind ``bot`` or ``bulletin`` those to
areas (``notifier.engine.areas``: the message is the area's, its recipient the area code).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from channels.base import (
    Channel,
    Failed,
    OutboundMessage,
    Retry,
    SendResult,
    SendWindow,
    Sent,
    message_id_of,
    send_window,
)
from notifier.engine.areas import AREA_KINDS, area_message
from notifier.engine.confirm_marks import asks_confirmation, with_confirm_link
from notifier.engine.context import EngineContext
from notifier.engine.direct import send_direct
from notifier.engine.outcomes import record_results
from notifier.engine.personal import PERSONAL_KEY, personal_meta, personalise
from notifier.engine.publicity import publicity_table
from notifier.engine.receipts import apply_early_receipts
from notifier.engine.render import content_key
from notifier.engine.shared_ratelimit import give_back_shared, take_shared
from notifier.signing import ConfirmLinks
from notifier.store.database import Row

log = logging.getLogger(__name__)

NO_MESSAGE_ID = "sent without a message id: the provider may have taken the message"  # a Retry's reason
NOT_AN_OUTCOME = "the adapter answered no send result: the provider may have taken the message"  # and the type
HEADER_START = re.compile(r"(Severity|Topic|Department|Issued):", re.IGNORECASE)
STOPPED_NOTICE_STATES = frozenset({"cancelled", "expired"})

T = TypeVar("T")


@dataclass
class Unrecorded:
    """A batch handed to the gateway whose results are not written yet: the worker writes them in the same
    transaction as its next claim (``record_and_claim``), or alone when it claims nothing more."""

    count: int
    lease_end: float  # the batch's lease: after it the rows may be another worker's (``keep_trying``)
    write: Callable[[], Awaitable[None]]
    written: bool = False


async def dispatch_alias(ctx: EngineContext, alias: str) -> int:
    """Claim, send and record one batch for one alias, its results written before it returns (burst mode);
    the number of deliveries handled."""
    handled, unrecorded = await dispatch_batch(ctx, alias, None)
    if unrecorded is not None:
        await write_alone(ctx, alias, unrecorded)
    return handled


async def dispatch_batch(ctx: EngineContext, alias: str, previous: Unrecorded | None) -> tuple[int, Unrecorded | None]:
    """Write ``previous`` (the results of this worker's last batch) and claim the next batch in one write
    transaction, then send it: (deliveries handled, written or claimed; the new batch's results, still to
    write). A crash before that transaction commits leaves the previous batch leased and unrecorded (sent
    again, as a crash between any send and its record); after it, the new batch is leased and not sent
    (taken back and sent). So the fold loses no result and marks nothing sent that was not."""
    handled = previous.count if previous is not None else 0
    lease_end = ctx.clock() + ctx.settings.engine.lease_seconds
    direct, rows = await claim_next(ctx, alias, previous)
    if direct:
        return handled + await send_direct(ctx, alias, direct), None
    if not rows:
        return handled, None
    channel = ctx.channels[alias]
    notices = ctx.store.notices_of_claim(rows)  # read by the claiming statement itself
    live = await skip_stopped(ctx, rows, notices)
    if not live:
        return handled + len(rows), None
    confirmed = await already_sent(ctx, channel, live)
    unsent = [row for row in live if row["id"] not in confirmed] if confirmed else live
    answers = await send_batch(ctx, channel, await build_messages(ctx, unsent, notices)) if unsent else []
    results = with_receipted(live, confirmed, answers)
    return handled + len(rows), Unrecorded(
        len(live), lease_end, lambda: record_batch(ctx, alias, live, notices, results)
    )


def with_receipted(rows: list[Row], confirmed: dict[int, str], answers: list[SendResult]) -> list[SendResult]:
    """The results of a batch, in its order: ``Sent`` with the receipt's message id for each delivery in
    ``confirmed`` (``already_sent``: not handed to the provider), the adapter's answers for the others in
    turn. With no receipt found (nearly every batch) the answers are the results, no list made per row
    (1,100 to 1,700 instructions a message of the engine's loop, valgrind)."""
    if not confirmed:
        return answers
    rest = iter(answers)
    return [Sent(confirmed[row["id"]]) if row["id"] in confirmed else next(rest) for row in rows]


async def write_alone(ctx: EngineContext, alias: str, unrecorded: Unrecorded) -> None:
    """Write a batch's results with no claim after them (burst mode, a worker stopping, no token left)."""
    await asyncio.shield(keep_trying(ctx, alias, unrecorded.lease_end, unrecorded.write))
    unrecorded.written = True


async def already_sent(ctx: EngineContext, channel: Channel, rows: list[Row]) -> dict[int, str]:
    """Of claimed deliveries tried before, those a stored receipt proves the provider has: by delivery id,
    the message id of that receipt. Their earlier send was never recorded (its worker died after handing
    it over); sending again would reach the resident twice."""
    candidates = {
        message_id: row["id"]
        for row in rows
        if row["attempts"] > 1
        for message_id in channel.receipt_ids(row["id"], resend_number(row))
    }
    if not candidates:
        return {}
    aliases = [channel.alias, *ctx.failover_members[channel.alias]]  # a failover's kept under its members
    found = await ctx.store.receipted_message_ids(aliases, list(candidates))
    if found:
        log.info("%d deliveries on %s already have a receipt: recorded from it, not sent again", len(found),
                 channel.alias)
    return {candidates[message_id]: message_id for message_id in sorted(found)}


async def keep_trying(ctx: EngineContext, alias: str, lease_end: float, record: Callable[[], Awaitable[T]]) -> T:
    """Write a batch's results, again and again while the database refuses (locked past its busy timeout,
    briefly unreachable): the provider has answered, and results not written would have the batch sent
    again once its lease ran out. Until the lease ends; after it the rows may be another worker's, and the
    writes (which only touch rows this worker still leases) would change nothing."""
    failures = 0
    while True:
        try:
            written = await record()
        except Exception:
            if ctx.clock() >= lease_end:
                raise
            if not failures:
                log.warning("recording a batch on %s failed; trying again until its lease ends", alias, exc_info=True)
            failures += 1
            await asyncio.sleep(ctx.settings.engine.poll_interval)
        else:
            if failures:
                log.info("batch on %s recorded after %d failed tries", alias, failures)
            return written


async def record_batch(
    ctx: EngineContext, alias: str, rows: list[Row], notices: dict[int, Row], results: list[SendResult]
) -> None:
    """The results of a batch of ``alias``, and any receipt that arrived before them (kept under the alias or,
    for a failover alias, under one of its members), in one transaction: a receipt hook either
    committed first (and is applied here) or finds the sends recorded; none is left unapplied by a crash
    between the two. The sent messages' ids are locked first, as the hook locks its receipt's
    (``Store.lock_message_ids``): on PostgreSQL the two transactions would otherwise each look before the
    other committed, and the receipt be kept but never applied."""
    sent = [(row, result) for row, result in zip(rows, results, strict=True) if isinstance(result, Sent)]
    sent_ids = [row["id"] for row, _ in sent]
    async with ctx.store.db.transaction():
        await ctx.store.lock_message_ids((row["alias"], result.provider_message_id) for row, result in sent)
        await record_results(ctx, rows, notices, results)
        await apply_early_receipts(ctx.store, sent_ids, ctx, ctx.failover_members[alias])


async def claim_next(ctx: EngineContext, alias: str, previous: Unrecorded | None) -> tuple[list[Row], list[Row]]:
    """Take as many sends as the alias's rate limit grants now (shared by every process of the database,
    ``shared_ratelimit``), no more than its adapter can answer within the send budget (``Channel.batch_limit``);
    then, in one transaction with the write of ``previous``, lease that many: the alias's direct messages
    first, else its deliveries (``record_and_claim``). Tokens not used go back. (direct rows, delivery rows)."""
    limiter = ctx.limiters[alias]
    now = ctx.clock()
    wanted = min(ctx.settings.engine.batch_size, ctx.channels[alias].batch_limit(send_budget(ctx)))
    try:
        granted = await take_shared(ctx.store, alias, limiter, wanted, now)
    except Exception:
        if previous is not None:  # the shared limit's table refused: the results in hand are still written
            await write_alone(ctx, alias, previous)
        raise
    if previous is None and granted == 0:
        return [], []
    try:
        if previous is None:
            direct, rows = await record_and_claim(ctx, alias, None, granted, now)
        else:  # the provider has answered: the write goes on if this task is cancelled, and is retried
            write = previous.write
            direct, rows = await asyncio.shield(
                keep_trying(ctx, alias, previous.lease_end, lambda: record_and_claim(ctx, alias, write, granted, now))
            )
            previous.written = True
    except Exception:  # its transaction rolled back: nothing was claimed, every token granted goes back
        await give_back_after_failure(ctx, alias, granted, now)
        raise
    await give_back_shared(ctx.store, alias, limiter, granted - len(direct) - len(rows), now)
    return direct, rows


async def give_back_after_failure(ctx: EngineContext, alias: str, granted: int, now: float) -> None:
    """The tokens of a claim that raised, back to the shared bucket; were they kept, the alias would send
    below its rate from then on. A cancelled claim keeps them (its shielded write may still claim)."""
    try:
        await give_back_shared(ctx.store, alias, ctx.limiters[alias], granted, now)
    except Exception as exc:  # the database still refuses: the claim's own error is the one to raise
        log.warning("%d rate tokens of %s could not be given back after a failed claim: %s", granted, alias,
                    type(exc).__name__)


async def record_and_claim(
    ctx: EngineContext, alias: str, write: Callable[[], Awaitable[None]] | None, granted: int, now: float
) -> tuple[list[Row], list[Row]]:
    """One write transaction: the last batch's results (``write``), then up to ``granted`` of the alias's
    direct messages (codes and links go before any notice; none for area kinds) or else deliveries leased."""
    lease = ctx.settings.engine.lease_seconds
    async with ctx.store.db.transaction():
        if write is not None:
            await write()
        if granted == 0:
            return [], []
        direct = []
        if ctx.kind_of(alias) not in AREA_KINDS:
            direct = await ctx.store.claim_direct_messages(alias, ctx.worker, now, lease, granted)
        if direct:
            return direct, []
        return [], await ctx.store.claim_deliveries(alias, ctx.worker, now, lease, granted)


def resend_number(row: Row) -> int:
    """0 for a delivery's message (and its retries), 1 for the reminder sent again on the same channel (a claimed
    delivery that was sent before: ``resent``). Adapters that choose message ids give each send its own."""
    return 1 if row.get("resent") else 0


def idempotency_key(row: Row, resend: int) -> str:
    """Stable across retries of one message; a reminder sent again on the same channel is a new message.
    ``resend``: the row's ``resend_number``."""
    key = f"n{row['notice_id']}-s{row['subscriber_id']}-{row['channel']}"
    return f"{key}-r1" if resend else key  # sent before: the reminder (once) on the same channel


async def area_content(ctx: EngineContext, row: Row) -> dict[str, str | None]:
    """An area delivery's message: the notice's rendering, and for the printout of a publicity list the
    masked table of that area's rows in its header block (``engine.publicity``)."""
    content = await rendered(ctx, row["notice_id"], row["channel"])
    if row["channel"] != "bulletin":
        return content
    publicity = await ctx.store.notice_publicity(row["notice_id"])
    if publicity is None:
        return content
    table = await publicity_table(ctx.store, publicity, row["area_code"])
    text = content.get("text") or ""
    joint = "\n" if HEADER_START.match(text) else "\n\n"  # join the header block, or start one
    return {**content, "text": table.to_header() + joint + text}


async def skip_stopped(ctx: EngineContext, rows: list[Row], notices: dict[int, Row]) -> list[Row]:
    """Skip deliveries whose notice was cancelled or expired; return the others."""
    if not any(notice["state"] in STOPPED_NOTICE_STATES for notice in notices.values()):
        return rows  # nearly every batch
    live = []
    for row in rows:
        state = notices[row["notice_id"]]["state"]
        if state in STOPPED_NOTICE_STATES:
            await ctx.store.close_delivery(
                row["id"], state="skipped", from_state="sending", error=state, worker=ctx.worker
            )
        else:
            live.append(row)
    return live


async def build_messages(ctx: EngineContext, rows: list[Row], notices: dict[int, Row]) -> list[OutboundMessage]:
    messages = []
    contents = await batch_contents(ctx, rows)
    cells = await roster_cells(ctx, rows, contents)
    links = ConfirmLinks.from_settings(ctx.settings)
    for row, content in zip(rows, contents, strict=True):
        if row.get("area_code") is not None:
            messages.append(area_message(row, content))
            continue
        confirm_url = links.url(row["id"]) if asks_confirmation(content) else None
        personal = content.get(PERSONAL_KEY)
        if personal:
            content = personalise(content, cells.get((personal_meta(personal)[0], row["subscriber_id"]), {}))
        text, html = with_confirm_link(row["channel"], content.get("text") or "", content.get("html"), confirm_url)
        resend = resend_number(row)
        messages.append(
            OutboundMessage(
                delivery_id=row["id"],
                notice_id=row["notice_id"],
                channel=row["channel"],
                alias=row["alias"],
                recipient=row["address"],
                text=text,
                subject=content.get("subject"),
                html=html,
                idempotency_key=idempotency_key(row, resend),
                priority=row["priority"],
                confirm_url=confirm_url,
                resend=resend,
            )
        )
    return messages


async def batch_contents(ctx: EngineContext, rows: list[Row]) -> list[dict[str, str | None]]:
    """Each delivery's message: an area's (``area_content``), or the rendering in the resident's language
    (``rendered``), looked up once per notice, kind and language of the batch (not two coroutines a delivery)."""
    contents = []
    found: dict[tuple[int, str, str | None], dict[str, str | None]] = {}
    for row in rows:
        if row.get("area_code") is not None:
            contents.append(await area_content(ctx, row))
            continue
        key = (row["notice_id"], row["channel"], row.get("language"))
        content = found.get(key)
        if content is None:
            content = found[key] = await rendered(ctx, *key)
        contents.append(content)
    return contents


async def roster_cells(
    ctx: EngineContext, rows: list[Row], contents: list[dict[str, str | None]]
) -> dict[tuple[int, int], dict[str, str]]:
    """The roster row of each recipient of a personal message in the batch, by (roster id, resident id): one
    query per roster in the batch."""
    wanted: dict[int, list[int]] = {}
    for row, content in zip(rows, contents, strict=True):
        personal = content.get(PERSONAL_KEY)
        if personal and row.get("area_code") is None:
            wanted.setdefault(personal_meta(personal)[0], []).append(int(row["subscriber_id"]))
    found: dict[tuple[int, int], dict[str, str]] = {}
    for roster_id, ids in wanted.items():
        for subscriber_id, row_cells in (await ctx.store.roster_cells(roster_id, ids)).items():
            found[roster_id, subscriber_id] = row_cells
    return found


async def rendered(
    ctx: EngineContext, notice_id: int, channel: str, language: str | None = None
) -> dict[str, str | None]:
    """The stored rendering of a notice for a channel kind in the resident's language (or its primary subtag),
    else in the fallback language; cached per process."""
    cached = ctx.contents.get(notice_id)
    if cached is None:
        if len(ctx.contents) > 256:
            ctx.contents.clear()
        stored = await ctx.store.rendered_messages(notice_id)
        cached = ctx.contents[notice_id] = {kind: json.loads(text) for kind, text in stored.items()}
    if language:
        for key in (content_key(channel, language), content_key(channel, language.split("-")[0])):
            if key in cached:
                return cached[key]
    return cached.get(channel) or {}


def send_budget(ctx: EngineContext) -> float:
    """Seconds one adapter call may take: well inside the lease, so no other worker claims the batch meanwhile."""
    return ctx.settings.engine.lease_seconds * 0.8


async def send_batch(ctx: EngineContext, channel: Channel, messages: list[OutboundMessage]) -> list[SendResult]:
    """Call the adapter; an exception, a timeout or a wrong number of results means Retry for all. The adapter
    starts no request it could not finish by the window's deadline (``SendWindow``), a tenth of the budget
    before the hard timeout, so a request started at the last moment is answered (or times out) before the
    batch is cut off."""
    timeout = send_budget(ctx)
    token = send_window.set(SendWindow(asyncio.get_running_loop().time() + timeout * 0.9))
    try:
        async with asyncio.timeout(timeout):
            results = await channel.send(messages)
    except TimeoutError:
        log.warning("channel %s did not answer within %.0f s", channel.alias, timeout)
        return [Retry("adapter timeout")] * len(messages)
    except Exception as exc:
        ctx.errors.exception(exc, "channel %s raised %s; its batch is retried", channel.alias, type(exc).__name__)
        return [Retry(f"adapter error: {type(exc).__name__}")] * len(messages)
    finally:
        send_window.reset(token)
    if len(results) != len(messages):
        log.error("channel %s returned %d results for %d messages", channel.alias, len(results), len(messages))
        return [Retry("adapter broke the one-result-per-message contract")] * len(messages)
    return with_message_ids(channel.alias, results)


def with_message_ids(alias: str, results: list[SendResult]) -> list[SendResult]:
    """An adapter's results, each ``Sent`` holding its id as ``channels.base.message_id_of`` reads it (without its
    blanks). A ``Sent`` without a usable id (empty, blank, ``"None"``: a third-party adapter's) is made
    ``Retry(NO_MESSAGE_ID)``, as the shipped adapters answer a success without an id (``UNRECOGNISED``): every
    send recorded under such an id would share it, and one receipt naming it could confirm or fail any of them.
    An answer that is no ``SendResult`` at all (``None``, ``True``: a broken adapter) is ``Retry(NOT_AN_OUTCOME)``
    with its type, not a record that fails until the lease ends. The provider may have taken such a message and
    its retry may reach the resident again: logged, with the alias and counts only. Nearly every batch has only
    results with usable ids: its results are returned, no list made."""
    if all(_usable(result) for result in results):
        return results
    checked: list[SendResult] = []
    for result in results:
        if _usable(result):
            checked.append(result)
        elif isinstance(result, Sent):
            message_id = message_id_of(result.provider_message_id)
            checked.append(Sent(message_id) if message_id is not None else Retry(NO_MESSAGE_ID))
        else:
            checked.append(Retry(f"{NOT_AN_OUTCOME}: {type(result).__name__}"))
    without_id = sum(isinstance(result, Retry) and result.reason == NO_MESSAGE_ID for result in checked)
    if without_id:
        log.warning(
            "channel %s answered %d of %d messages sent without a message id: retried (the provider may have them)",
            alias, without_id, len(results),
        )  # fmt: skip
    broken = sum(not isinstance(result, Sent | Retry | Failed) for result in results)
    if broken:
        log.error(
            "channel %s answered %d of %d messages with no send result: retried (the provider may have them)",
            alias, broken, len(results),
        )  # fmt: skip
    return checked


def _usable(result: object) -> bool:
    return isinstance(result, Retry | Failed) or (isinstance(result, Sent) and usable_id(result))


def usable_id(result: Sent) -> bool:
    """Whether ``result`` holds its id as it is recorded and as a receipt names it (``message_id_of``)."""
    return message_id_of(result.provider_message_id) == result.provider_message_id
