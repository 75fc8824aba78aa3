"""Opt-out replies by SMS ("TD", "退订"): recognised, applied, and never lost.

A gateway hands us a reply once: Kannel calls its sms-service get-url a single time unless its smsbox sets
``http-request-retry``, and then only a few times. So a reply the database cannot take at that moment (it is
locked by a migration or a backup, or briefly down) is kept in the inbox, ``engine.inbox_dir``: one small
JSON file per reply, written to a temporary name, flushed to disk and renamed, so a file is there whole or
not at all. Housekeeping (``apply_kept_opt_outs``) applies the kept replies oldest first and deletes each
file once its opt-out is committed; until then it tries again on every pass. A crash between the commit
and the deletion, or a hook that gave up waiting just as its commit went through, applies the reply twice,
which is harmless (one opt-out, two audit entries).

The files hold phone numbers: the folder and files are readable by the service's user only, and a file
lives only until its reply is applied. The inbox is local to the machine, so run the hooks and an engine
(``notifier serve`` with workers, or ``notifier worker``) on the same host with the same ``inbox_dir``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import unicodedata
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from notifier.domain.contacts import mask_phone
from notifier.engine.context import EngineContext
from notifier.store import Store

log = logging.getLogger(__name__)

OPT_OUT_WORDS = frozenset({"td", "t", "n", "r", "退订"})
SOURCE = "sms-reply"  # of the opt-out and actor of its audit entry


def opt_out_word(text: str) -> str | None:
    """The opt-out word a reply consists of, else None. Compatibility forms count as their plain letters
    (full-width "ＴＤ" from a Chinese keyboard is "td"), surrounding spaces of any kind are ignored."""
    word = unicodedata.normalize("NFKC", text).strip().casefold()
    return word if word in OPT_OUT_WORDS else None


@dataclass(frozen=True)
class OptOutReply:
    """An SMS reply kept until applied: an opt-out (``word``), or (``word`` empty) a confirmation or feedback
    whose ``text`` ``notifier.engine.replies`` reads."""

    phone: str  # E.164
    alias: str  # the channel alias it came in on
    word: str  # the normalised opt-out word; "" for any other reply
    received_at: float  # epoch seconds
    text: str = ""  # the reply as received, for a reply that is no opt-out


async def apply_opt_out(store: Store, reply: OptOutReply) -> int | None:
    """Opt the sender out of SMS and audit it; the resident's id, or None when no resident has the number."""
    subscriber_id = await store.find_subscriber_by_phone(reply.phone)
    if subscriber_id is None:
        log.info("sms opt-out on %s from %s: no such resident", reply.alias, mask_phone(reply.phone))
        return None
    async with store.db.transaction():
        change = await store.add_optout_audited(subscriber_id, "channel", "sms", SOURCE)
        await store.audit(SOURCE, "subscriber.optout", "subscriber", subscriber_id,
                          {"kind": "channel", "value": "sms", "alias": reply.alias, "word": reply.word, **change})
    log.info("resident %s opted out of sms by reply on %s", subscriber_id, reply.alias)
    return subscriber_id


class OptOutInbox:
    """The folder of kept replies. File work runs in a thread: it may wait for the disk."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    async def keep(self, reply: OptOutReply) -> None:
        """Write the reply durably; raises OSError when it could not be."""
        await asyncio.to_thread(self._write, reply)

    async def kept(self, limit: int) -> list[tuple[Path, OptOutReply | None]]:
        """Up to ``limit`` kept replies, oldest first; None for a file that is not a reply."""
        return await asyncio.to_thread(self._read, limit)

    async def remove(self, path: Path) -> None:
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def set_aside(self, path: Path) -> None:
        """Move an unreadable file out of the way (kept for a person to look at)."""
        await asyncio.to_thread(path.replace, path.with_suffix(".unreadable"))

    def _write(self, reply: OptOutReply) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        temporary = self.folder / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(asdict(reply), file, ensure_ascii=False)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.folder / f"{name}.json")
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a power cut
        finally:
            os.close(directory)

    def _read(self, limit: int) -> list[tuple[Path, OptOutReply | None]]:
        if not self.folder.is_dir():
            return []
        paths = sorted(p for p in self.folder.iterdir() if p.suffix == ".json")[:limit]
        found: list[tuple[Path, OptOutReply | None]] = []
        for path in paths:
            try:
                found.append((path, OptOutReply(**json.loads(path.read_text(encoding="utf-8")))))
            except FileNotFoundError:
                continue  # applied by another process meanwhile
            except (ValueError, TypeError):
                found.append((path, None))
        return found


async def apply_kept_opt_outs(ctx: EngineContext, limit: int = 200) -> int:
    """Apply the replies kept in the inbox; stops at the first the database still refuses. How many applied."""
    inbox = OptOutInbox(ctx.settings.engine.inbox_dir)
    applied = 0
    for path, reply in await inbox.kept(limit):
        if reply is None:
            log.error("inbox file %s is not an opt-out reply; set aside", path.name)
            await inbox.set_aside(path)
            continue
        try:
            if reply.word:
                await apply_opt_out(ctx.store, reply)
            else:
                from notifier.engine.replies import apply_text_reply  # replies builds on this module

                await apply_text_reply(ctx.store, ctx.settings, reply)
        except Exception as exc:
            log.warning("kept sms opt-outs still cannot be stored (%s); trying again later", type(exc).__name__)
            break
        await inbox.remove(path)
        applied += 1
    if applied:
        log.info("applied %d kept sms opt-out replies", applied)
    return applied


__all__ = [
    "OPT_OUT_WORDS",
    "SOURCE",
    "OptOutInbox",
    "OptOutReply",
    "apply_kept_opt_outs",
    "apply_opt_out",
    "opt_out_word",
]
