"""The primary SMS adapter raising on a code: the engine hands it to the backup gateway, the log gets the
traceback once (not a bare type name), and no phone number."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from notifier.logs import install_scrubbing
from tests.test_subscribe_page import PHONE, Page, start


class GatewayDown(ConnectionError):
    pass


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async for p in start(tmp_path):
        yield p


@pytest.fixture
def scrubbed() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    install_scrubbing()
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


async def test_adapter_exception_on_the_code_sms_fails_over_and_is_logged_with_its_traceback_once(
    page: Page, caplog: pytest.LogCaptureFixture, scrubbed: None
) -> None:
    caplog.set_level(logging.INFO)
    try:
        raise GatewayDown(f"gateway refused +86{PHONE}")
    except GatewayDown as exc:
        page.sms.fail_with(exc)
    statuses = []
    for _ in range(2):
        status, _ = await page.submit()
        statuses.append(status)
        page.clock.advance(61)  # past the one-code-per-minute limit

    assert statuses == [200, 200]
    assert [m.alias for m in page.backup.messages] == ["sms-backup", "sms-backup"]  # failed over
    found = [r for r in caplog.records if r.exc_info is not None and r.name.startswith("notifier")]
    assert len(found) == 1 and isinstance(found[0].exc_info[1], GatewayDown)  # type: ignore[index]
    assert "sms-main" in found[0].getMessage()
    assert PHONE not in caplog.text
