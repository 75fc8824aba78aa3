"""A SIGKILL between handing a batch to a real Kannel and recording it, with the delivery reports of that batch
already stored: the restarted process takes the dead one's leases back on its heartbeat, not after the lease,
and the SMSC (Kannel's fake SMSC) receives no message twice."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.population import populate_url
from channels.kannel import KannelChannel, KannelOptions
from notifier.api import create_app, hooks
from notifier.config import Settings
from notifier.engine import Engine
from notifier.store import Store
from notifier.testing import FakeClock
from tests.databases import read_rows, url_of
from tests.engine.conftest import approved
from tests.engine.crash_worker import crash_settings
from tests.engine.test_crash import start_worker
from tests.kannel_peer import SENDSMS_PASSWORD, SENDSMS_USER, KannelPeer, kannel_peer, wait_until

TOKEN = "crash-hook-token-5b1e"
RESIDENTS, BATCH = 300, 50
ENGINE = {"workers": 1, "batch_size": BATCH, "lease_seconds": 600, "heartbeat_seconds": 0.2}


@pytest.fixture
async def hook_base(engine_store: Store, tmp_path: Path) -> AsyncIterator[str]:
    """Our receipt hook on a real port, for the alias ``sms`` of type kannel."""
    settings = Settings.model_validate({
        "database": {"url": url_of(engine_store.db)},
        "channels": {"sms": {"kind": "sms", "type": "kannel", "username": SENDSMS_USER,
                             "password": SENDSMS_PASSWORD, "hook_token": TOKEN}},
    })  # fmt: skip
    server = TestServer(create_app(settings, store=engine_store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def unmatched_reports(db_url: str) -> int:
    """Delivery reports stored before their send was recorded, and not matched since."""
    query = "SELECT COUNT(*) FROM receipts WHERE delivery_id IS NULL AND status = 'delivered'"
    [(count,)] = await read_rows(db_url, query)
    return int(count)


async def smsc_sent(kannel: KannelPeer) -> tuple[int, int]:
    """(messages bearerbox has sent to the SMSC, messages still queued for it), from its status page."""
    url = f"http://127.0.0.1:{kannel.ports['admin']}/status.txt?password=statuspw"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        status = await response.text()
    line = next(line for line in status.splitlines() if line.startswith("SMS:"))
    sent = line.split("sent", 1)[1].split()  # "sent 300 (0 queued)"
    return int(sent[0]), int(sent[1].lstrip("("))


@pytest.mark.slow
@pytest.mark.peer("kannel")
async def test_sigkill_after_kannel_took_a_batch_repeats_no_reported_message(
    engine_store: Store, tmp_path: Path, hook_base: str
) -> None:
    db_url = url_of(engine_store.db)
    await populate_url(db_url, RESIDENTS)
    notice = await approved(engine_store, target={"areas": ["370725"]})
    async with kannel_peer(tmp_path, f"{hook_base}/hooks/kannel/mo?alias=sms&token={TOKEN}&from=%p&text=%b") as kannel:
        options: dict[str, Any] = {
            "url": kannel.sendsms_url, "username": SENDSMS_USER, "password": SENDSMS_PASSWORD, "hook_token": TOKEN,
            "dlr_url": f"{hook_base}/hooks/kannel/dlr",
        }
        process = await start_worker(db_url, tmp_path / "unused.log",
                                     {"engine": ENGINE, "kannel": options, "stall_after": 2})
        try:  # two batches recorded; the third is with Kannel, unrecorded, and its reports come back
            async def third_batch_reported() -> bool:
                assert process.returncode is None, "the delivery process died by itself"
                return await unmatched_reports(db_url) == BATCH

            await wait_until(third_batch_reported, "the reports of the batch in flight", within=60)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert len(kannel.received()) <= 3 * BATCH

        clock = FakeClock()
        clock.advance(2)  # ten missed heartbeats; the dead process's leases have 598 s left
        channel = KannelChannel("sms", KannelOptions.model_validate(options))
        await channel.open()
        try:
            await Engine(engine_store, crash_settings(db_url, **ENGINE), {"sms": channel},
                         clock=clock).run_until_idle()
        finally:
            await channel.close()

        async def everyone_delivered_and_kannel_idle() -> bool:
            counts = (await engine_store.get_notice(notice.id)).counts
            sent, queued = await smsc_sent(kannel)
            return counts == {"sms": {"delivered": RESIDENTS}} and queued == 0 and sent == len(kannel.received())

        await wait_until(everyone_delivered_and_kannel_idle, "every report, and Kannel to have sent all", within=60)
        by_phone = Counter(sms.receiver for sms in kannel.received())
        assert len(by_phone) == RESIDENTS and set(by_phone.values()) == {1}  # nobody got the alert twice
