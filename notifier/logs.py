"""The process's logging: one format, and nothing secret or forged in any line of it.

``configure_logging`` (called by the command line before anything runs) installs ``ScrubbingRecordFactory``
as the process's log record factory, so every record of every logger, ours or a library's (aiohttp writes
a malformed request's raw header lines, API keys included, into its parser errors), is cleaned once, as
it is made, whatever handler or formatter later writes it:

- its message, with the arguments put in, and the text of its exception pass through ``scrub``: bearer
  and basic credentials, the values of ``token``/``key``/``signature``/``password``-like parameters and
  headers, API keys (``ntf_<prefix>_<secret>``: the prefix stays, it names the key) and phone numbers are
  replaced, and control characters (C0 and C1, CR and LF, ESC, NUL, DEL), bidirectional overrides,
  zero-width characters and line separators are written as escapes (``\\n``, ``\\x1b``, ``\\u202e``);
- so a record is one line, unless it carries a traceback: the traceback's own lines follow, indented
  as Python writes them, and each exception's message in it is one escaped line.

A request aiohttp cannot parse (a request line or header over its 8190-byte limit, a bad header, an invalid
method or version) is logged by aiohttp's ``aiohttp.server`` logger with the parser's error, which quotes up to
the whole request line or header line: a query string with a resident's name (a console search) or a header's
value. ``BadRequestFilter``, put on that logger by the app factory (``install_bad_request_filter``), keeps the
fact and the parser's own reason and drops the quoted bytes and the traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any, TextIO

from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from notifier.domain.masking import mask_identity_numbers_in_text, mask_phones_in_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[\w.~+/=-]{6,}")
_SECRET_VALUE = re.compile(  # a credential's scheme (Authorization: Bearer ***) is left to _CREDENTIAL
    r"(?i)\b([\w-]*(?:token|key|signature|sign|sig|secret|password|passwd|pwd|authorization|ticket)[\w-]*)"
    r"([\"']?\s*(?:=|%3D|:)\s*[\"']?)(?!(?:bearer|basic)\s)([^&\s\"',;<>]+)"
)
_API_KEY = re.compile(r"\bntf_([0-9a-f]{12})_[A-Za-z0-9_-]{6,}")
# llhttp's errors read "<reason>:\n\n  <the bytes>\n  <a caret>", a bad status line's behind "Bad status line:\n  "
_PARSER_REASON = re.compile(r"(?:Bad status line:\n  )?([A-Za-z][\w ,/-]*):\n\n  ")
AIOHTTP_REQUEST_LOGGERS = ("aiohttp.server", "aiohttp.web")
_ESCAPED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


def escape_controls(text: str) -> str:
    """Control, bidirectional, zero-width and line-separator characters as visible escapes."""

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        return _ESCAPED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _UNSAFE.sub(escape, text)


def redact(text: str) -> str:
    """``text`` without credentials, secret parameter values, API keys, phone numbers or identity numbers."""
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _API_KEY.sub(lambda m: f"ntf_{m.group(1)}_***", text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return mask_phones_in_text(mask_identity_numbers_in_text(text))


def scrub(text: str) -> str:
    """One safe log line: ``redact``, then ``escape_controls``."""
    return escape_controls(redact(text))


def format_exception(exc: BaseException) -> str:
    """A traceback as Python prints it (causes and contexts first), each exception's message scrubbed to
    one line and every frame line scrubbed too."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    chain.reverse()
    lines: list[str] = []
    for index, item in enumerate(chain):
        if index:
            lines += [
                "",
                "The above exception was the direct cause of the following exception:"
                if item.__cause__ is chain[index - 1]
                else "During handling of the above exception, another exception occurred:",
                "",
            ]
        if item.__traceback__ is not None:
            lines.append("Traceback (most recent call last):")
            lines += [scrub(line) for frame in traceback.format_tb(item.__traceback__) for line in frame.splitlines()]
        lines.append(scrub("".join(traceback.format_exception_only(type(item), item)).rstrip("\n")))
    return "\n".join(lines)


class ScrubbingRecordFactory:
    """Wraps the record factory in use: each record it makes comes out scrubbed (see the module docstring)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a format string that does not fit its arguments: keep both, safely
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = scrub(message), None
        if isinstance(record.exc_info, tuple) and record.exc_info[1] is not None:
            record.exc_text = format_exception(record.exc_info[1])
        if record.stack_info:
            record.stack_info = "\n".join(scrub(line) for line in record.stack_info.splitlines())
        return record


def bad_request_reason(exc: HttpProcessingError) -> str:
    """What was wrong with a request aiohttp refused, in words that quote nothing the client sent."""
    if isinstance(exc, LineTooLong):
        return f"a request line or header longer than {exc.args[1]} bytes"
    match = _PARSER_REASON.match(exc.message)
    reason = f": {match.group(1)}" if match else ""
    return f"{type(exc).__name__}{reason}"


class BadRequestFilter(logging.Filter):
    """Rewrites aiohttp's record of a request it could not parse (see the module docstring): the message it had
    ("Error handling request from <address>"), then the status and ``bad_request_reason``; no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if isinstance(exc, HttpProcessingError):
            status, reason = exc.code or 400, bad_request_reason(exc)
            record.msg = f"{record.getMessage()}: bad request refused with {status} ({reason})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def install_bad_request_filter() -> None:
    """Put ``BadRequestFilter`` on aiohttp's request loggers (once; a second call changes nothing)."""
    for name in AIOHTTP_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, BadRequestFilter) for existing in logger.filters):
            logger.addFilter(BadRequestFilter())


def install_scrubbing() -> None:
    """Make every log record of the process a scrubbed one (once; a second call changes nothing)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, ScrubbingRecordFactory):
        logging.setLogRecordFactory(ScrubbingRecordFactory(current))


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """The process's logging: scrubbed records, one line each, at ``level``, to ``stream`` (stderr).

    aiosqlite stays at INFO even when ``level`` is DEBUG: its debug lines carry every query's parameters,
    residents' names and addresses among them."""
    install_scrubbing()
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=stream or sys.stderr)
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))


__all__ = [
    "LOG_FORMAT",
    "BadRequestFilter",
    "bad_request_reason",
    "configure_logging",
    "escape_controls",
    "format_exception",
    "install_bad_request_filter",
    "install_scrubbing",
    "scrub",
]
