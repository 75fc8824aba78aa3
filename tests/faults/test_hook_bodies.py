"""A provider's callback arriving over a slow link: its body in several pieces, not one.

Receipts come back as HTTP requests whose bodies may reach us in more than one read (a slow or lossy link,
a proxy that streams, chunked transfer encoding). The hook must read the body to its end: half a WeChat
receipt is unreadable XML, and a receipt refused as unreadable is a receipt lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from notifier.api import create_app, hooks
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.store import Store
from tests.conftest import VILLAGE_A1
from tests.engine.conftest import delivery_rows
from tests.test_wechat_hooks import event_xml, running_hook, signed


async def in_two_pieces(body: bytes) -> AsyncIterator[bytes]:
    """The body as a slow link delivers it: the first half, a moment later the rest (chunked encoding)."""
    yield body[: len(body) // 2]
    await asyncio.sleep(0.05)
    yield body[len(body) // 2 :]


async def test_a_wechat_receipt_arriving_in_pieces_is_read_whole(tmp_path: Path) -> None:
    """WeChat pushes TEMPLATESENDJOBFINISH for a sent message, and the body arrives in two pieces. The issuer
    sees the delivery ``delivered`` and WeChat is answered ``success`` (it used to read only the first
    piece: "unreadable message", 400, and the receipt was lost)."""
    async with running_hook(tmp_path) as hook:
        notice_id = await hook.sent_delivery()
        url = f"{hook.base}/hooks/wechat"
        async with hook.session.post(url, params=signed(), data=in_two_pieces(event_xml().encode())) as response:
            answer = (response.status, await response.text())
        [row] = await delivery_rows(hook.store, notice_id)
    assert answer == (200, "success")
    assert row["state"] == "delivered"


async def test_a_td_reply_posted_in_pieces_opts_the_resident_out(store: Store, settings: Settings) -> None:
    """Kannel posts a resident's "TD" reply as a form (``post-url``), and the form arrives in two pieces.
    The resident is opted out of SMS (it used to read only the first piece: the reply was taken for one
    without a text, and the opt-out was lost)."""
    token = "t0ken-for-kannel"
    channels = {"kannel": {"kind": "sms", "type": "kannel", "username": "u", "password": "p", "hook_token": token}}
    app_settings = Settings.model_validate({"database": {"url": settings.database.url}, "channels": channels})
    person = await store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": "+8613800138000", "area_code": VILLAGE_A1,
                                     "channels": ["sms"]}), "t"
    )
    form = f"alias=kannel&token={token}&from=%2B8613800138000&text=TD".encode()
    server = TestServer(create_app(app_settings, store=store, extra_routes=hooks.ROUTES), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.post(
            str(server.make_url("/hooks/kannel/mo")),
            data=in_two_pieces(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            assert response.status == 200
    finally:
        await server.close()
    assert (await store.get_subscriber(person.id)).opt_out_channels == ["sms"]
