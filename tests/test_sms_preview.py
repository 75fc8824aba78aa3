"""The notice preview's SMS bill: counted on the text each gateway receives, for the whole audience.

The rendered SMS text is ``{title}：{body}（{department name}）``; the texts below are built so that this
alone fits one UCS-2 part while the gateway's 【signature】 and opt-out wording push it to two.
The last test checks the prediction against the parts a real Kannel hands its SMSC.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.aliyun_sms import AliyunSmsChannel
from channels.base import Channel, OutboundMessage, Sent
from channels.generic_http import GenericHttpChannel
from channels.kannel import KannelChannel, KannelOptions
from channels.sms_text import count_segments
from channels.tencent_sms import TencentSmsChannel
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from tests.conftest import TOWN_A, VILLAGE_A1, VILLAGE_A2
from tests.fake_gateway import Reply, Seen, fake_gateway
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


# ------------------------------------------------------------ what each gateway receives is what is counted


def kannel_text(seen: Seen) -> str:
    return seen.query["text"]


def generic_text(seen: Seen) -> str:
    return str(seen.json()["msg"])


def aliyun_text(seen: Seen) -> str:  # the platform puts the signature in front of the template's parameter
    form = parse_qs(seen.body.decode())
    return f"【{form['SignName'][0]}】" + json.loads(form["TemplateParam"][0])["content"]


def tencent_text(seen: Seen) -> str:
    body = seen.json()
    return f"【{body['SignName']}】" + body["TemplateParamSet"][0]


GATEWAYS: list[tuple[type[Channel], dict[str, Any], Reply, Callable[[Seen], str]]] = [
    (KannelChannel, {"username": "u", "password": "p", "signature": SIGNATURE, "unsubscribe_text": OPT_OUT},
     Reply(202, "0: Accepted for delivery"), kannel_text),
    (GenericHttpChannel, {"body_template": '{"to": {{ to | tojson }}, "msg": {{ text | tojson }}}',
                          "signature": "昌乐县应急管理局", "unsubscribe_text": "拒收请回复R"},
     Reply(200, {"id": "m1"}), generic_text),
    (AliyunSmsChannel, {"access_key_id": "LTAI-test", "access_key_secret": "s", "sign_name": "昌乐县",
                        "template_code": "SMS_1"},
     Reply(200, {"Code": "OK", "BizId": "b1"}), aliyun_text),
    (TencentSmsChannel, {"secret_id": "AKID", "secret_key": "k", "sdk_app_id": "1400006666",
                         "sign_name": "昌乐县人民政府", "template_id": "449739"},
     Reply(200, {"Response": {"SendStatusSet": [{"PhoneNumber": PHONES[0], "Code": "Ok", "SerialNo": "s1"}]}}),
     tencent_text),
]


@pytest.mark.parametrize(
    ("adapter", "options", "reply", "received"), GATEWAYS, ids=lambda value: getattr(value, "__name__", "")
)
@pytest.mark.parametrize("text", [RENDERED, f"【{SIGNATURE}】{RENDERED}", "Air quality alert: stay indoors {today}."])
async def test_every_sms_gateway_receives_the_text_the_preview_counts(
    adapter: type[Channel], options: dict[str, Any], reply: Reply, received: Callable[[Seen], str], text: str
) -> None:
    async with fake_gateway(reply) as gateway:
        url = {"url": gateway.url} if adapter in (KannelChannel, GenericHttpChannel) else {"endpoint": gateway.url}
        channel = adapter("sms-x", adapter.Options.model_validate({**options, **url}))
        await channel.open()
        try:
            [result] = await channel.send([OutboundMessage(1, 1, "sms", "sms-x", PHONES[0], text, "n1-s1-sms")])
        finally:
            await channel.close()
        [seen] = gateway.seen
    assert isinstance(result, Sent), result
    assert received(seen) == channel.gateway_text(text)
    assert channel.gateway_text(text) != text  # every one of them adds a signature


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


BOUNDARIES = [
    *("测" * n for n in (70, 71, 134, 135, 201, 202)),  # UCS-2: 70 in one part, 67 per part
    *("a" * n for n in (160, 161, 306, 307)),  # GSM 7-bit: 160 in one part, 153 per part
    "a" * 159 + "€",  # an extension character costs two septets
    "a" * 152 + "{" + "a" * 152,  # 306 septets, but the escape pair may not straddle parts: 3
    "测" * 66 + "😀" + "测" * 5,  # a character outside the BMP costs two UTF-16 units
    "😀" * 36,
]
SPLIT_SURROGATE = "测" * 66 + "😀" + "测" * 66  # the pair falls on the boundary of the first part


@pytest.mark.peer("kannel")
async def test_kannel_splits_every_text_into_the_parts_count_segments_predicts(tmp_path: Path) -> None:
    texts = [*BOUNDARIES, SPLIT_SURROGATE]
    receivers = [f"+86139{number:08d}" for number in range(len(texts))]
    async with kannel_peer(tmp_path, "http://127.0.0.1:9/unused?text=%b") as kannel:
        channel = KannelChannel("kannel", KannelOptions(url=kannel.sendsms_url, username=SENDSMS_USER,
                                                        password=SENDSMS_PASSWORD))
        await channel.open()
        try:
            batch = [OutboundMessage(i, 1, "sms", "kannel", to, text, f"k{i}") for i, (to, text) in
                     enumerate(zip(receivers, texts, strict=True))]
            assert all(isinstance(result, Sent) for result in await channel.send(batch))
        finally:
            await channel.close()

        async def every_message_complete() -> bool:
            messages = concatenated(kannel.received())
            return len(messages) == len(texts) and complete(messages)

        await wait_until(every_message_complete, "every part of every message at the fake SMSC")
        parts = {receiver: len(p) for (receiver, _), p in concatenated(kannel.received()).items()}
    for receiver, text in zip(receivers, BOUNDARIES, strict=False):
        assert parts[receiver] == count_segments(text).segments, (len(text), count_segments(text))
    # Kannel cuts a surrogate pair in two (the handset shows two broken halves); we never do, so there we
    # count one part more than Kannel sends: the preview errs on the side of the larger bill.
    assert parts[receivers[-1]] == count_segments(SPLIT_SURROGATE).segments - 1 == 2
