"""Test doubles shipped with the package: a channel that records what it was given.

``RecordingChannel`` keeps every batch it receives and answers ``Sent`` unless told otherwise:
``plan(recipient, *results)`` scripts the answers for one recipient, in order (the last one repeats);
``hold()`` makes the next ``send`` wait until ``release()``, to stop a worker mid-call; ``fail_with(exc)``
makes every ``send`` raise ``exc`` until ``fail_with(None)``. With the
``log_path`` option it also appends one JSON line per message to a file, flushed before it answers,
so a test can count what a killed process handed over. With ``own_ids`` its message ids are chosen
before the send (``<alias>-d<delivery id>``, with ``-r1`` for a resend, as Kannel's are) and announced
through ``receipt_ids``; with ``stall_after`` every batch after that many answered ones is handed over (and
logged) but never answered: a process stuck, or killed, between a send and its record.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from channels.base import Channel, ChannelOptions, OutboundMessage, SendResult, Sent


class RecordingOptions(ChannelOptions):
    log_path: str | None = None
    max_batch: int = 100
    own_ids: bool = False
    reports_delivery: bool = True  # like an SMS gateway with its receipt hook; False: like e-mail
    stall_after: int | None = None


class RecordingChannel(Channel):
    Options = RecordingOptions

    def __init__(self, alias: str = "recording", options: ChannelOptions | None = None, **values: object) -> None:
        super().__init__(alias, options if options is not None else RecordingOptions.model_validate(values))
        assert isinstance(self.options, RecordingOptions)
        self.max_batch = self.options.max_batch  # type: ignore[misc]
        self.batches: list[list[OutboundMessage]] = []
        self.scripts: dict[str, list[SendResult]] = defaultdict(list)
        self.entered = asyncio.Event()
        self.failure: Exception | None = None
        self._gate: asyncio.Event | None = None
        self.opened = self.closed = False

    @property
    def messages(self) -> list[OutboundMessage]:
        return [message for batch in self.batches for message in batch]

    def reports_delivery(self) -> bool:
        assert isinstance(self.options, RecordingOptions)
        return self.options.reports_delivery

    def recipients(self) -> list[str]:
        return [message.recipient for message in self.messages]

    def plan(self, recipient: str, *results: SendResult) -> None:
        """Answer messages to ``recipient`` with these results in order; the last one repeats."""
        self.scripts[recipient] = list(results)

    def fail_with(self, exc: Exception | None) -> None:
        self.failure = exc

    def hold(self) -> None:
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        self.entered.set()
        if self._gate is not None:
            await self._gate.wait()
        if self.failure is not None:
            raise self.failure
        self.batches.append(list(batch))
        results = [self._answer(message) for message in batch]
        assert isinstance(self.options, RecordingOptions)
        if self.options.log_path:
            await asyncio.to_thread(self._log, Path(self.options.log_path), batch)
        if self.options.stall_after is not None and len(self.batches) > self.options.stall_after:
            await asyncio.Event().wait()
        return results

    def receipt_ids(self, delivery_id: int, resend: int = 0) -> Sequence[str]:
        assert isinstance(self.options, RecordingOptions)
        return (self._own_id(delivery_id, resend),) if self.options.own_ids else ()

    def _own_id(self, delivery_id: int, resend: int) -> str:
        return f"{self.alias}-d{delivery_id}" + (f"-r{resend}" if resend else "")

    def _answer(self, message: OutboundMessage) -> SendResult:
        script = self.scripts.get(message.recipient)
        if not script:
            assert isinstance(self.options, RecordingOptions)
            if self.options.own_ids:
                return Sent(self._own_id(message.delivery_id, message.resend))
            return Sent(f"{self.alias}-{message.delivery_id}-{len(self.batches)}")
        return script.pop(0) if len(script) > 1 else script[0]

    @staticmethod
    def _log(path: Path, batch: list[OutboundMessage]) -> None:
        lines = "".join(
            json.dumps({"delivery": m.delivery_id, "key": m.idempotency_key, "alias": m.alias}) + "\n" for m in batch
        )
        with path.open("a+", encoding="utf-8") as file:
            if file.tell() > 0:
                file.seek(file.tell() - 1)
                if file.read(1) != "\n":  # a process killed mid-write left a torn last line: start a new one
                    lines = "\n" + lines
            file.write(lines)
            file.flush()


class FakeClock:
    """A clock for the engine (``Engine(..., clock=FakeClock())``) that moves only when told."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
