"""The printout spool's disk is full: a real, tiny tmpfs mounted for the test and filled to the last block.

Villages without a printer get their notice as a PDF in ``spool_dir`` (``channels.bulletin_cups``); writing
it raises ENOSPC from the kernel, nothing is simulated. Mounting needs root (CAP_SYS_ADMIN): elsewhere the
test skips, and CI, which runs as root with every peer required, fails instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels import load_channels
from notifier.store import Store
from notifier.testing import FakeClock
from tests.databases import database_url, read_rows
from tests.engine.conftest import VILLAGE_A1, approved, resident
from tests.faults.conftest import counts, fault_settings, running, until
from tests.test_bulletin_render import need_fonts

RENDERING = 180.0  # seconds a test waits for a printout: WeasyPrint takes long on a loaded machine


@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path, leave_free: int) -> Path:
    """Write a file until the kernel says ENOSPC, then give back ``leave_free`` bytes: a disk all but full."""
    filler = disk / "archive.bin"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave_free))
    return filler


def spool_files(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file() and p.name != "archive.bin")


async def area_rows(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    return await read_rows(
        database_url(tmp_path, "faults.db"),
        "SELECT area_code, state, last_error FROM deliveries WHERE area_code IS NOT NULL ORDER BY area_code",
    )


@pytest.mark.peer("tmpfs")
async def test_a_full_spool_disk_holds_printouts_back_until_there_is_room(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """The spool disk has 8 KB left, less than one printout. The issuer sees the village's printout
    ``queued`` with "spool write failed: No space left on device", and the spool holds no half-written file
    (a partial PDF would be printed, or keep the disk full; it used to stay as ``.tmp``). When room is made
    (old printouts archived), the running engine writes it after its backoff, once and whole, and the next
    poll marks it ``delivered``; nobody restarts anything."""
    need_fonts()
    with tiny_disk(tmp_path / "spool") as disk:
        board = {
            "kind": "bulletin", "type": "bulletin", "public_url": "https://notify.example.gov.cn",
            "county_name": "昌乐县", "department_name": "生态环境分局", "spool_dir": str(disk), "render_workers": 1,
        }
        settings = fault_settings(tmp_path, {"board": board}, lease_seconds=300)  # rendering starts a process pool
        await resident(fault_store)
        notice = await approved(fault_store, target={"areas": [VILLAGE_A1]}, channels=["bulletin"])
        filler = await asyncio.to_thread(fill, disk, 8192)
        async with running(fault_store, settings, load_channels(settings), clock):

            async def refused() -> bool:
                rows = await area_rows(tmp_path)
                return len(rows) == 1 and all(state == "queued" and error for _, state, error in rows)

            await until(refused, "the printout refused by the full disk", within=RENDERING)
            rows = await area_rows(tmp_path)
            assert {error for _, _, error in rows} == {"spool write failed: No space left on device"}
            assert await counts(fault_store, notice) == {"bulletin": {"queued": 1}}
            assert await asyncio.to_thread(spool_files, disk) == []  # nothing half-written left behind

            await asyncio.to_thread(filler.unlink)  # room is made
            clock.advance(settings.engine.backoff_max)

            async def spooled() -> bool:
                return await counts(fault_store, notice) == {"bulletin": {"sent": 1}}

            await until(spooled, "the printout written once there is room", within=RENDERING)
            clock.advance(60)  # the next poll of the spooled jobs

            async def delivered() -> bool:
                return await counts(fault_store, notice) == {"bulletin": {"delivered": 1}}

            await until(delivered, "the printout confirmed by its poll")

        [name] = await asyncio.to_thread(spool_files, disk)  # one printout, nothing else left behind
        assert name.startswith(f"{VILLAGE_A1}/") and name.endswith(".pdf")
        data = (disk / name).read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
