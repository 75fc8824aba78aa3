"""The outbox channel: every message becomes one text file, like a file-based mail backend.

Until a real gateway is configured, each channel of ``config.example.toml`` writes what it would send
to ``<root>/<alias>/<delivery id>.txt``, so the whole flow can be watched with ``ls`` and ``cat``. The reminder
sent again on the same channel (``OutboundMessage.resend``) goes to ``<delivery id>-r1.txt`` beside it, as the
Kannel adapter names it ``d<delivery id>-r1``: the first message's file is kept. A retry of a send writes
that send's file again, with the same text.
The file holds a small header (recipient, subject, idempotency key), one line per field whatever the
field holds (control and line-breaking characters are written as ``\\uXXXX``), and the rendered text.

Response table: file written -> Sent("outbox-<delivery id>"; "outbox-<delivery id>-r1" resent); OSError -> Retry
(a full disk or a permission problem may be fixed by an operator); nothing is ever Failed.

Writing is done in a worker thread (``asyncio.to_thread``) so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from channels.base import Channel, OutboundMessage, Retry, SendResult, Sent
from channels.sms_text import ConfirmTextOptions


class OutboxOptions(ConfirmTextOptions):
    root: str = "outbox"  # folder under which one sub-folder per alias is created


class OutboxChannel(Channel):
    Options = OutboxOptions
    max_batch = 500

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        """As an SMS gateway would get it: with ``confirm``, the confirm wording at its end."""
        assert isinstance(self.options, OutboxOptions)
        return text.removesuffix(self.options.confirm_text) + self.options.confirm_text if confirm else text

    @property
    def folder(self) -> Path:
        assert isinstance(self.options, OutboxOptions)
        return Path(self.options.root) / self.alias

    async def open(self) -> None:
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        return await asyncio.to_thread(self._write_all, batch)

    def _write_all(self, batch: list[OutboundMessage]) -> list[SendResult]:
        self.folder.mkdir(parents=True, exist_ok=True)
        results: list[SendResult] = []
        for message in batch:
            try:
                self._write(message)
            except OSError as exc:
                results.append(Retry(f"outbox write failed: {exc.strerror or exc}"))
            else:
                results.append(Sent(f"outbox-{file_stem(message)}"))
        return results

    def _write(self, message: OutboundMessage) -> None:
        header = [
            f"To: {header_value(message.recipient)}",
            f"Channel: {header_value(message.channel)} ({header_value(message.alias)})",
            f"Notice: {message.notice_id}",
            f"Idempotency-Key: {header_value(message.idempotency_key)}",
        ]
        if message.subject:
            header.append(f"Subject: {header_value(message.subject)}")
        if message.confirm_url and message.channel != "sms":
            header.append(f"Confirm: {header_value(message.confirm_url)}")
        path = self.folder / f"{file_stem(message)}.txt"
        partial = path.with_suffix(".tmp")
        text = self.gateway_text(message.text, message.confirm_url is not None and message.channel == "sms")
        content = "\n".join(header) + "\n\n" + text + "\n"
        partial.write_text(content, encoding="utf-8", errors="backslashreplace")
        partial.replace(path)


def file_stem(message: OutboundMessage) -> str:
    """``<delivery id>`` for a delivery's message, ``<delivery id>-r<n>`` for its n-th resend (a reminder)."""
    return f"{message.delivery_id}-r{message.resend}" if message.resend else str(message.delivery_id)


def header_value(value: str) -> str:
    """``value`` on one line: every control, format or line-breaking character written as a visible escape.

    Fields are checked where they enter (``notifier.domain.text``); this holds even if one slips through,
    so no field can end the header line and forge another (``\\nTo: ...`` in a title).
    """
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _UNPRINTABLE else char for char in str(value)
    )


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
