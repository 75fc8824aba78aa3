"""Adapter exceptions reach the log with their traceback once per distinct error, then as counts; early
receipts, the normal case on a fast gateway, are not warnings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.base import Channel, JobState, OutboundMessage, SendResult
from channels.failover import FailoverChannel, FailoverOptions
from notifier.config import Settings
from notifier.engine import Engine
from notifier.errorlog import ErrorLog
from notifier.logs import install_scrubbing
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import open_migrated
from tests.engine.conftest import COUNTY, approved, resident, seed
from tests.engine.test_area_deliveries import AREA_CHANNELS, RecordingAreaChannel, area_settings

PHONE = "+8613912345678"


class GatewayDown(ConnectionError):
    pass


def raise_down(where: str) -> None:
    raise GatewayDown(f"{where} refused the message to {PHONE}")


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None and r.name.startswith(("notifier", "channels"))]


@pytest.fixture
def scrubbed() -> Iterator[None]:
    """The record factory the service installs for its whole process."""
    before = logging.getLogRecordFactory()
    install_scrubbing()
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


def test_first_of_each_error_has_its_traceback_and_repeats_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock(0)
    errors = ErrorLog(logging.getLogger("notifier.test"), report_every=60, clock=clock)
    for _ in range(3):
        try:
            raise_down("gateway a")
        except GatewayDown as exc:
            errors.exception(exc, "channel %s raised", "a")
    assert len(tracebacks(caplog)) == 1 and len(caplog.records) == 1
    try:
        raise ValueError("something else")
    except ValueError as exc:
        errors.exception(exc, "channel %s raised", "a")
    assert [r.getMessage() for r in caplog.records][1].startswith("channel a raised: 2 more times (")
    assert len(tracebacks(caplog)) == 2 and isinstance(tracebacks(caplog)[1].exc_info[1], ValueError)  # type: ignore[index]

    try:
        raise_down("gateway a")
    except GatewayDown as exc:
        errors.exception(exc, "channel %s raised", "a")
    errors.report_due()
    assert len(caplog.records) == 3  # counted, not yet reported
    clock.advance(60)
    errors.report_due()
    assert caplog.records[-1].getMessage().startswith("channel a raised: 1 more times (")


async def test_adapter_exception_is_logged_with_its_traceback_once(
    engine: Engine, engine_store: Store, channels: dict[str, RecordingChannel], clock: FakeClock,
    caplog: pytest.LogCaptureFixture, scrubbed: None,
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(3):
        await resident(engine_store)
    await approved(engine_store)
    engine.ctx.settings.engine.batch_size = 1
    try:
        raise_down("gateway")
    except GatewayDown as exc:
        channels["sms-main"].fail_with(exc)
    await engine.run_until_idle()  # three batches, each raising the same error

    found = tracebacks(caplog)
    assert len(found) == 1 and isinstance(found[0].exc_info[1], GatewayDown)  # type: ignore[index]
    assert "sms-main" in found[0].getMessage()
    assert PHONE not in caplog.text and "+86139****5678" in caplog.text


class Raising(Channel):
    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        raise_down("member")
        return []


async def test_failover_member_exception_is_logged_with_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    channel = FailoverChannel("sms", FailoverOptions(aliases=["p", "b"], failure_threshold=100))
    channel.bind({"p": Raising("p"), "b": Raising("b")})
    message = OutboundMessage(1, 1, "sms", "sms", PHONE, "text", "n1-s1-sms")
    for _ in range(3):
        await channel.send([message])
    await channel.close()

    found = tracebacks(caplog)
    assert [r.getMessage().split(" raised")[0] for r in found] == ["sms: member p"]
    assert isinstance(found[0].exc_info[1], GatewayDown)  # type: ignore[index]
    assert caplog.records[-1].getMessage().startswith("sms: member p raised GatewayDown: 2 more times (")


class UnreachablePrinter(RecordingAreaChannel):
    async def poll_job(self, provider_message_id: str) -> JobState:
        raise_down("print server")
        return "pending"


async def test_print_job_poll_exception_is_logged_with_its_traceback_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings: Settings = area_settings(tmp_path)
    db = await open_migrated(settings.database.url)
    try:
        store = Store(db)
        await seed(store)
        await approved(store, target={"areas": [COUNTY]}, channels=["bulletin"])
        adapters: dict[str, Channel] = {alias: RecordingChannel(alias) for alias in AREA_CHANNELS}
        adapters["board"] = UnreachablePrinter("board")
        clock = FakeClock()
        engine = Engine(store, settings, adapters, clock=clock)
        await engine.run_until_idle()
        for _ in range(2):
            clock.advance(61)  # each pass asks about the three print jobs again
            await engine.run_until_idle()
    finally:
        await db.close()

    found = tracebacks(caplog)
    assert len(found) == 1 and isinstance(found[0].exc_info[1], GatewayDown)  # type: ignore[index]
    assert "board" in found[0].getMessage()


async def test_early_receipt_is_not_a_warning(
    engine: Engine, engine_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notifier")
    await engine.record_receipt("sms-main", "sms-main-1-1", "delivered")
    early = [r for r in caplog.records if "kept until its send is recorded" in r.getMessage()]
    assert early, "the early receipt is still in the log, for whoever reads it at DEBUG"
    assert [r.levelno for r in early] == [logging.DEBUG]
