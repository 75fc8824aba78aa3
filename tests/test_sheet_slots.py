"""Uploaded spreadsheets are read at most ``SHEETS_AT_ONCE`` at a time in one process: a workbook within the
reader's bounds may still take a few hundred MB while it is read, and uploads at once would add up.

The reader is replaced by one that blocks until the test lets it go, so the test sees how many reads are inside it
while more are asked for: the third waits for a slot, and goes in once one is given back.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from notifier.api import rosters
from subscribers import importer
from subscribers.roster_rows import RosterTable
from subscribers.sheet_slots import SHEETS_AT_ONCE, sheet_slots


class BlockingReader:
    """Stands for ``read_uploaded``: counts the reads inside it, tells the test (``all_slots_taken``) once
    ``SHEETS_AT_ONCE`` have come in, and holds each until the test sets ``go``."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.all_slots_taken = asyncio.Event()
        self.inside = 0
        self.most_inside = 0
        self.entered = 0
        self.lock = threading.Lock()
        self.go = threading.Event()

    def __call__(self, data: bytes, suffix: str) -> RosterTable:
        with self.lock:
            self.inside += 1
            self.entered += 1
            self.most_inside = max(self.most_inside, self.inside)
            if self.entered == SHEETS_AT_ONCE:
                self.loop.call_soon_threadsafe(self.all_slots_taken.set)
        try:
            if not self.go.wait(10):
                raise TimeoutError("the test never let the read go")
            return RosterTable(["phone"], [])
        finally:
            with self.lock:
                self.inside -= 1


async def test_a_third_upload_waits_for_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = BlockingReader()
    monkeypatch.setattr(rosters, "read_uploaded", reader)
    reads = [asyncio.create_task(rosters.read_upload(b"phone\n", ".csv")) for _ in range(SHEETS_AT_ONCE + 1)]
    slots = sheet_slots()
    await asyncio.wait_for(reader.all_slots_taken.wait(), 10)
    # every task ran up to its slot before a thread could come in: the third is waiting, not reading
    assert (slots.reading, slots.waiting) == (SHEETS_AT_ONCE, 1)
    assert reader.inside == SHEETS_AT_ONCE
    reader.go.set()
    tables = await asyncio.wait_for(asyncio.gather(*reads), 10)
    assert len(tables) == SHEETS_AT_ONCE + 1 and reader.entered == SHEETS_AT_ONCE + 1
    assert reader.most_inside == SHEETS_AT_ONCE
    assert (slots.reading, slots.waiting) == (0, 0)


async def test_a_read_that_fails_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: bytes, suffix: str) -> RosterTable:
        raise ValueError("unreadable")

    monkeypatch.setattr(rosters, "read_uploaded", broken)
    for _ in range(SHEETS_AT_ONCE + 1):
        with pytest.raises(ValueError):
            await rosters.read_upload(b"x", ".csv")
    assert sheet_slots().reading == 0 and not sheet_slots().free.locked()


async def test_an_import_reads_its_file_in_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's resident import (``import_file``) holds a slot for the whole of its read."""
    held: list[int] = []

    async def reading(*args: object) -> importer.ImportResult:
        held.append(sheet_slots().reading)
        return importer.ImportResult(report_path=None)

    monkeypatch.setattr(importer, "_import", reading)
    await importer.import_file(None, Path("residents.csv"), actor="test", report_path=None)  # type: ignore[arg-type]
    assert held == [1] and sheet_slots().reading == 0
