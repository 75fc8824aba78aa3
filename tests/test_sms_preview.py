"""The notice preview's SMS bill: counted on the text each gateway receives, for the whole audience.

The rendered SMS text is ``{title}：{body}（{department name}）``; the texts below are built so that this
alone fits one UCS-2 part while the gateway's 【signature】 and opt-out wording push it to two.
The last test checks the prediction against the parts a real Kannel hands its SMSC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.kannel import KannelChannel, KannelOptions
from channels.sms_text import count_segments
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_A2
from tests.kannel_peer import SENDSMS_PASSWORD, SENDSMS_USER, FakeSms, kannel_peer, wait_until

DEPARTMENT_NAME = "生态环境分局"  # the environment department of the seeded catalog
TITLE = "重污染天气橙色预警"
BODY = "明日起启动重污染天气橙色预警，中小学停止户外活动，请减少外出，老人儿童留在室内，注意防护健康。"
RENDERED = f"{TITLE}：{BODY}（{DEPARTMENT_NAME}）"
SIGNATURE, OPT_OUT = "昌乐县政府", "回TD退订"
PHONES = ["+8613900000001", "+8613900000002", "+8613900000003"]

KANNEL = {"kind": "sms", "type": "kannel", "order": 1, "username": SENDSMS_USER, "password": SENDSMS_PASSWORD,
          "url": "http://127.0.0.1:9/cgi-bin/sendsms", "signature": SIGNATURE, "unsubscribe_text": OPT_OUT}
ALIYUN = {"kind": "sms", "type": "aliyun_sms", "order": 2, "access_key_id": "LTAI-test", "access_key_secret": "s",
          "sign_name": "昌乐县", "template_code": "SMS_1", "endpoint": "http://127.0.0.1:9/"}


def test_the_text_alone_fits_one_part_but_not_with_signature_and_opt_out() -> None:
    assert count_segments(RENDERED).segments == 1
    assert count_segments(f"【{SIGNATURE}】{RENDERED}{OPT_OUT}").segments == 2


async def add_residents(store: Store) -> None:
    for number, phone in enumerate(PHONES):
        resident = {"name": f"居民{number}", "phone": phone, "area_code": [VILLAGE_A1, VILLAGE_A2][number % 2],
                    "channels": ["sms"]}
        await store.create_subscriber(SubscriberIn.model_validate(resident), "test")


@pytest.fixture
async def served(store: Store, settings: Settings) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The API (no engine) of a county whose SMS go through Kannel first, Aliyun second; base URL and keys."""
    config = Settings.model_validate(
        {"database": {"url": settings.database.url}, "channels": {"sms-kannel": KANNEL, "sms-aliyun": ALIYUN}}
    )
    keys = {}
    for role in (Role.ISSUER, Role.VIEWER):
        _, keys[role.value] = await store.create_api_key(department="environment", role=role, name=role, actor="t")
    server = TestServer(create_app(config, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), keys
    finally:
        await server.close()


async def call(base: str, key: str, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {key}"}
        async with session.request(method, base + path, json=payload, headers=headers) as response:
            return response.status, await response.json()


NOTICE = {"topic": "air-quality", "title": TITLE, "body": BODY, "severity": "severe",
          "target": {"areas": [TOWN_A]}, "channels": ["sms"]}


async def test_preview_counts_the_signed_text_for_every_recipient(
    store: Store, served: tuple[str, dict[str, str]]
) -> None:
    base, keys = served
    await add_residents(store)
    status, notice = await call(base, keys["issuer"], "POST", "/api/v1/notices", NOTICE)
    assert status == 201, notice
    status, figures = await call(base, keys["viewer"], "GET", f"/api/v1/notices/{notice['id']}/preview")
    assert status == 200, figures
    assert figures["deliveries"] == {"sms": 3}
    assert figures["sms_segments"] == 2
    bill = figures["sms"]
    assert (bill["deliveries"], bill["billable_parts"], bill["billable_parts_at_most"]) == (3, 6, 6)
    kannel, aliyun = bill["aliases"]
    assert kannel == {"alias": "sms-kannel", "role": "primary", "chars": len(RENDERED) + 12, "encoding": "ucs2",
                      "parts_per_message": 2, "deliveries": 3, "billable_parts": 6}
    # the backup's platform adds its shorter 【昌乐县】 and no opt-out wording: one part, if it had to send
    assert aliyun == {"alias": "sms-aliyun", "role": "backup", "chars": len(RENDERED) + 5, "encoding": "ucs2",
                      "parts_per_message": 1, "deliveries": 0, "billable_parts": 0}


async def test_preview_of_a_notice_without_sms_has_no_bill(store: Store, served: tuple[str, dict[str, str]]) -> None:
    base, keys = served
    await add_residents(store)
    _, notice = await call(base, keys["issuer"], "POST", "/api/v1/notices", {**NOTICE, "channels": ["email"]})
    status, figures = await call(base, keys["viewer"], "GET", f"/api/v1/notices/{notice['id']}/preview")
    assert status == 200 and figures["sms"] is None and figures["sms_segments"] is None


# ------------------------------------------------------------------------------------------- real Kannel


def concatenated(parts: list[FakeSms]) -> dict[tuple[str, int], list[tuple[int, int, bytes]]]:
    """fakesmsc's parts grouped by (receiver, reference): (total, sequence, payload) read from each UDH.

    A one-part message carries no UDH; it stands alone with total and sequence 1.
    """
    messages: dict[tuple[str, int], list[tuple[int, int, bytes]]] = {}
    for number, part in enumerate(parts):
        if part.kind != "udh":
            messages[(part.receiver, -number - 1)] = [(1, 1, unquote_to_bytes(part.payload))]
            continue
        udh_text, _, payload = part.payload.partition(" data ")
        udh = unquote_to_bytes(udh_text)
        assert udh[:3] == b"\x05\x00\x03", f"unexpected UDH {udh.hex()}"  # 8-bit reference concatenation
        reference, total, sequence = udh[3], udh[4], udh[5]
        messages.setdefault((part.receiver, reference), []).append((total, sequence, unquote_to_bytes(payload)))
    return messages


def complete(messages: dict[tuple[str, int], list[tuple[int, int, bytes]]]) -> bool:
    return all(len(parts) == parts[0][0] for parts in messages.values())


@pytest.mark.peer("kannel")
async def test_preview_predicts_the_parts_kannel_hands_the_smsc(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    await add_residents(store)
    async with kannel_peer(tmp_path, "http://127.0.0.1:9/unused?text=%b") as kannel:
        config = Settings.model_validate({"database": {"url": settings.database.url},
                                          "channels": {"sms-kannel": {**KANNEL, "url": kannel.sendsms_url}}})
        channel = KannelChannel("sms-kannel", KannelOptions.model_validate(
            {k: v for k, v in KANNEL.items() if k not in ("kind", "type", "order")} | {"url": kannel.sendsms_url}
        ))
        engine = Engine(store, config, {"sms-kannel": channel})

        async def engine_factory(app: object) -> Engine | None:
            return engine

        server = TestServer(create_app(config, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            base = str(server.make_url("")).rstrip("/")
            _, key = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
            _, notice = await call(base, key, "POST", "/api/v1/notices", NOTICE)
            status, figures = await call(base, key, "GET", f"/api/v1/notices/{notice['id']}/preview")
        finally:
            await server.close()
        assert status == 200, figures
        await store.transition_notice(notice["id"], [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
        await channel.open()
        try:
            await engine.run_until_idle()
        finally:
            await channel.close()

        async def every_message_complete() -> bool:
            messages = concatenated(kannel.received())
            return len(messages) == len(PHONES) and complete(messages)

        await wait_until(every_message_complete, "every part of every message at the fake SMSC")
        messages = concatenated(kannel.received())

    assert sum(len(parts) for parts in messages.values()) == figures["sms"]["billable_parts"] == 2 * len(PHONES)
    for parts in messages.values():  # what the SMSC got, reassembled, is what the preview counted
        text = b"".join(payload for _, _, payload in sorted(parts, key=lambda p: p[1])).decode("utf-16-be")
        assert text == f"【{SIGNATURE}】{RENDERED}{OPT_OUT}"
        assert len(text) == figures["sms"]["aliases"][0]["chars"]
