"""Exceptions logged with their traceback once, then counted.

A gateway that is down, or a bug in an adapter, raises on every batch: one traceback per batch would bury
the log, and a type name alone says nothing of where it came from. ``ErrorLog.exception`` writes the first
occurrence of each distinct error (the same message, exception type and raising line) with its traceback,
and only counts the later ones; the counts are written with the next distinct error, or by the first call
(``exception`` or ``report_due``) ``report_every`` seconds after the last report, or by ``report``.
Messages name channels and aliases, never a resident; the exception's own text passes through the
process's log scrubbing (``notifier.logs``) like every other line.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

MAX_DISTINCT = 256  # distinct errors remembered; past that the memory starts again (after a report)

ErrorKey = tuple[str, str, str, int]  # message, exception type, file, line


def error_key(message: str, exc: BaseException) -> ErrorKey:
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    filename, line = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("?", 0)
    return message, f"{type(exc).__module__}.{type(exc).__qualname__}", filename, line


class ErrorLog:
    def __init__(
        self, logger: logging.Logger, report_every: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger, self.report_every, self.clock = logger, report_every, clock
        self._repeats: dict[ErrorKey, int] = {}  # repeats not yet reported, by error
        self._reported_at = clock()

    def exception(self, exc: BaseException, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Log ``message % args`` with the traceback of ``exc`` the first time, else count it."""
        text = message % args if args else message
        key = error_key(text, exc)
        if key in self._repeats:
            self._repeats[key] += 1
            self.report_due()
            return
        self.report()
        if len(self._repeats) >= MAX_DISTINCT:
            self._repeats.clear()
        self._repeats[key] = 0
        self.logger.log(level, "%s (first time; later ones are counted)", text, exc_info=exc)

    def report_due(self) -> None:
        if self.clock() - self._reported_at >= self.report_every:
            self.report()

    def report(self) -> None:
        """Write how often each error was seen again since its traceback or the last report."""
        self._reported_at = self.clock()
        for key, count in self._repeats.items():
            if count:
                text, kind, filename, line = key
                self.logger.warning("%s: %d more times (%s at %s:%d)", text, count, kind, filename, line)
                self._repeats[key] = 0


__all__ = ["ErrorLog", "error_key"]
