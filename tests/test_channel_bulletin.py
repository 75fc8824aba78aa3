"""The bulletin channel against a real CUPS scheduler (tests/cups_peer.py) and in spool-folder mode."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.bulletin_cups import BulletinChannel, BulletinOptions, split_header
from tests.cups_peer import CupsPeer, start_cups
from tests.test_bulletin_render import BODY, DIVISIONS, PUBLIC_URL, TITLE, VILLAGE, need_fonts

TOWN = "370725107"  # 乔官镇: no printer configured, so its printouts go to the spool folder
HEADER = "Severity: severe\nTopic: air-quality\nDepartment: 潍坊市生态环境局昌乐分局\nIssued: 2026-11-30T16:00:00+08:00"
TEXT = f"{HEADER}\n\n{BODY}"


def message(recipient: str = VILLAGE, delivery_id: int = 1, text: str = TEXT) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        notice_id=42,
        channel="bulletin",
        alias="board",
        recipient=recipient,
        text=text,
        idempotency_key=f"n42-a{recipient}-bulletin",
        subject=TITLE,
    )


def options(tmp_path: Path, printers: dict[str, object] | None = None) -> BulletinOptions:
    return BulletinOptions.model_validate(
        {
            "public_url": PUBLIC_URL,
            "county_name": "昌乐县",
            "divisions_csv": str(DIVISIONS),
            "spool_dir": str(tmp_path / "spool"),
            "printers": printers or {},
            "render_workers": 1,
        }
    )


@pytest.fixture(scope="module")
def cups() -> Iterator[CupsPeer]:
    peer = start_cups(("NOTICE_RAW", "NOTICE_STOPPED"))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
async def board(cups: CupsPeer, tmp_path: Path) -> AsyncIterator[BulletinChannel]:
    need_fonts()
    printers = {
        VILLAGE: cups.uri("NOTICE_RAW"),
        "370725001037": cups.uri("NO_SUCH_QUEUE"),
        "370725001038": {"uri": cups.uri("NOTICE_STOPPED"), "copies": 1},
    }
    channel = BulletinChannel("board", options(tmp_path, printers))
    await channel.open()
    try:
        yield channel
    finally:
        await channel.close()


async def wait_for(channel: BulletinChannel, provider_id: str, wanted: str) -> str:
    """Poll like the engine's receipt poller does, until ``wanted`` or 600 polls (no timing asserted)."""
    state = "pending"
    for _ in range(600):
        state = await channel.poll_job(provider_id)
        if state == wanted:
            break
        await asyncio.sleep(0.05)
    return state


@pytest.mark.peer("cups")
async def test_a_printout_reaches_the_village_queue_byte_for_byte(board: BulletinChannel, cups: CupsPeer) -> None:
    [result] = await board.send([message()])
    assert isinstance(result, Sent), result
    queue, _, job_id = result.provider_message_id.rpartition("#")
    assert queue == cups.uri("NOTICE_RAW")
    assert await wait_for(board, result.provider_message_id, "completed") == "completed"
    expected = await board.renderer.render(board.notice(message()))
    assert cups.saved_job(int(job_id)) == expected
    assert expected.startswith(b"%PDF-")


@pytest.mark.peer("cups")
async def test_a_batch_gets_one_result_per_message_in_order(board: BulletinChannel, cups: CupsPeer) -> None:
    results = await board.send([message(VILLAGE, 1), message("not-an-area", 2), message(TOWN, 3)])
    assert isinstance(results[0], Sent) and results[0].provider_message_id.startswith(cups.uri("NOTICE_RAW"))
    assert results[1] == Failed("invalid-area", "recipient must be a 9-digit town or 12-digit village code")
    assert isinstance(results[2], Sent) and results[2].provider_message_id.startswith("spool:")


@pytest.mark.peer("cups")
async def test_a_queue_cups_does_not_know_rejects_the_job(board: BulletinChannel) -> None:
    [result] = await board.send([message("370725001037")])
    assert isinstance(result, Failed) and result.reason_code == "job-rejected"


@pytest.mark.peer("cups")
async def test_a_queue_not_accepting_jobs_is_retried(board: BulletinChannel, cups: CupsPeer) -> None:
    cups.client("cupsreject", "NOTICE_STOPPED")
    try:
        [result] = await board.send([message("370725001038")])
    finally:
        cups.client("cupsaccept", "NOTICE_STOPPED")
    assert isinstance(result, Retry), result


@pytest.mark.peer("cups")
async def test_a_job_canceled_at_a_stopped_printer_polls_as_failed(board: BulletinChannel, cups: CupsPeer) -> None:
    cups.client("cupsdisable", "NOTICE_STOPPED")  # still accepts jobs, but holds them
    try:
        [result] = await board.send([message("370725001038")])
        assert isinstance(result, Sent), result
        assert await board.poll_job(result.provider_message_id) == "pending"
        job_id = result.provider_message_id.rpartition("#")[2]
        cups.client("cancel", f"NOTICE_STOPPED-{job_id}")
        assert await wait_for(board, result.provider_message_id, "failed") == "failed"
    finally:
        cups.client("cupsenable", "NOTICE_STOPPED")


@pytest.mark.peer("fonts")
async def test_an_unreachable_print_server_is_retried(tmp_path: Path) -> None:
    need_fonts()
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        uri = f"ipp://127.0.0.1:{closed.getsockname()[1]}/printers/NOTICE_RAW"
    channel = BulletinChannel("board", options(tmp_path, {VILLAGE: uri}))
    await channel.open()
    try:
        [result] = await channel.send([message()])
        assert await channel.poll_job(f"{uri}#1") == "pending"
    finally:
        await channel.close()
    assert isinstance(result, Retry) and result.reason == "print server unreachable"


@pytest.mark.peer("fonts")
async def test_without_a_printer_the_pdf_goes_to_the_spool_folder(tmp_path: Path) -> None:
    need_fonts()
    channel = BulletinChannel("board", options(tmp_path))
    await channel.open()
    try:
        [result] = await channel.send([message(TOWN, delivery_id=7)])
        assert isinstance(result, Sent)
        path = tmp_path / "spool" / TOWN / "n42-d7.pdf"
        assert result.provider_message_id == f"spool:{path}"
        assert path.read_bytes() == await channel.renderer.render(channel.notice(message(TOWN, 7)))
        assert await channel.poll_job(result.provider_message_id) == "completed"
        assert await channel.poll_job(f"spool:{tmp_path / 'missing.pdf'}") == "failed"
    finally:
        await channel.close()


def test_the_message_header_fills_the_printed_notice(tmp_path: Path) -> None:
    channel = BulletinChannel("board", options(tmp_path))
    channel.area_names = {VILLAGE: "宝都街道 恒盛社区居民委员会"}
    notice = channel.notice(message())
    assert (notice.title, notice.body, notice.severity, notice.topic) == (TITLE, BODY, "severe", "air-quality")
    assert notice.department_name == "潍坊市生态环境局昌乐分局"
    assert (notice.issued_at.year, notice.issued_at.month, notice.issued_at.day) == (2026, 11, 30)
    assert notice.area_name == "宝都街道 恒盛社区居民委员会" and notice.county_name == "昌乐县"


def test_text_without_a_header_is_all_body() -> None:
    assert split_header("停水通知：\n\n明日停水。") == ({}, "停水通知：\n\n明日停水。")
    assert split_header("Topic: education\n\n开学通知") == ({"topic": "education"}, "开学通知")
    assert split_header("Topic: education") == ({}, "Topic: education")


def test_options_are_strict() -> None:
    base = {"public_url": PUBLIC_URL, "county_name": "昌乐县"}
    assert BulletinOptions.model_validate({**base, "printers": {VILLAGE: "ipp://127.0.0.1:631/printers/A"}})
    for bad in ({"printer": {}}, {"printers": {"37072": "ipp://h/printers/A"}}, {"printers": {VILLAGE: "lpd://x/q"}}):
        with pytest.raises(ValueError):
            BulletinOptions.model_validate({**base, **bad})
