"""The Kannel adapter: its requests and reply table against a fake smsbox, then end to end against real Kannel."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.base import Failed, OutboundMessage, Retry, SendResult, Sent
from channels.kannel import KannelChannel, KannelOptions, dlr_signature
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from tests.conftest import VILLAGE_A1
from tests.databases import read_rows
from tests.fake_gateway import Reply, fake_gateway
from tests.kannel_peer import (
    MO_ESCAPES,
    SENDER,
    SENDSMS_PASSWORD,
    SENDSMS_USER,
    KannelPeer,
    kannel_hook_app,
    kannel_peer,
    mo_hook_url,
    wait_until,
)

ALERT = "【昌乐县政府】重污染天气橙色预警：明起三天减少户外活动。回TD退订"
PHONE = "+8613800138000"
TOKEN = "hook-secret-3f9a"


def message(text: str = "明起三天减少户外活动。", recipient: str = PHONE, delivery_id: int = 42) -> OutboundMessage:
    return OutboundMessage(delivery_id, 7, "sms", "kannel", recipient, text, f"n7-s{delivery_id}-sms")


def adapter(url: str, **options: Any) -> KannelChannel:
    values = {"url": url, "username": "tester", "password": "pw-secret", "timeout": 0.5, **options}
    return KannelChannel("kannel", KannelOptions.model_validate(values))


async def send_one(channel: KannelChannel, msg: OutboundMessage) -> SendResult:
    await channel.open()
    try:
        [result] = await channel.send([msg])
    finally:
        await channel.close()
    return result



async def test_a_batch_larger_than_the_pool_waits_its_turn_outside_the_request_timeout() -> None:
    async with fake_gateway(Reply(202, "0: Accepted for delivery", delay=0.2)) as gw:
        channel = adapter(f"{gw.url}/cgi-bin/sendsms", max_connections=2)  # timeout 0.5 s per request
        await channel.open()
        try:
            results = await channel.send([message(delivery_id=i) for i in range(10)])  # 5 turns of 0.2 s
        finally:
            await channel.close()
    assert results == [Sent(f"d{i}") for i in range(10)]
    assert gw.most_at_once == 2

@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(202, "0: Accepted for delivery"), Sent("d42")),
        (Reply(202, "3: Queued for later delivery"), Sent("d42")),
        (Reply(503, "Temporal failure, try again later."), Retry("http 503")),
        (Reply(503, "Temporal failure", headers={"Retry-After": "30"}), Retry("http 503", 30.0)),
        (Reply(403, "Not routable. Do not try again."), Failed("unroutable", "Not routable. Do not try again.")),
        (Reply(403, "Authorization failed for sendsms"), Failed("auth", "Kannel refused the username or password")),
        (Reply(400, "Missing receiver number, rejected"), Failed("http-400", "Missing receiver number, rejected")),
        (Reply(500, "boom"), Retry("http 500")),
        (Reply(hang=True), Retry("timeout")),
    ],
)
async def test_reply_table(reply: Reply, expected: SendResult) -> None:
    async with fake_gateway(reply) as smsbox:
        assert await send_one(adapter(smsbox.url + "/cgi-bin/sendsms"), message()) == expected


async def test_connection_refused_is_retry() -> None:
    async with fake_gateway() as smsbox:
        url = smsbox.url
    result = await send_one(adapter(url + "/cgi-bin/sendsms"), message())
    assert isinstance(result, Retry) and result.reason.startswith("connection error")


async def test_chinese_request_carries_signature_ucs2_and_dlr_url() -> None:
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as smsbox:
        channel = adapter(
            smsbox.url + "/cgi-bin/sendsms", sender="10690001", smsc="CMCC", signature="昌乐县政府",
            unsubscribe_text="回TD退订", dlr_url="https://notify.example.gov.cn/hooks/kannel/dlr",
            hook_token=TOKEN, dlr_mask=3,
        )
        assert await send_one(channel, message("重污染天气橙色预警：明起三天减少户外活动。")) == Sent("d42")
    [seen] = smsbox.seen
    assert (seen.method, seen.path) == ("GET", "/cgi-bin/sendsms")
    assert dict(seen.query) == {
        "username": "tester", "password": "pw-secret", "to": PHONE, "text": ALERT, "charset": "UTF-8",
        "coding": "2", "from": "10690001", "smsc": "CMCC", "dlr-mask": "3",
        "dlr-url": "https://notify.example.gov.cn/hooks/kannel/dlr?alias=kannel&id=d42"
                   f"&sig={dlr_signature(TOKEN, 'kannel', 'd42')}&type=%d",
    }
    assert TOKEN not in seen.query["dlr-url"]  # Kannel stores and logs dlr-urls: each is worth one message


async def test_a_resend_has_a_message_id_of_its_own_and_the_first_send_keeps_d_and_the_delivery_id() -> None:
    """The reminder sent again on the same channel (``resend=1``) is another message: a DLR of the first send,
    ``d42`` as before this id had a suffix, must not be taken for the reminder's."""
    resent = OutboundMessage(42, 7, "sms", "kannel", PHONE, "明起三天减少户外活动。", "n7-s42-sms-r1", resend=1)
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as smsbox:
        channel = adapter(smsbox.url, dlr_url="https://notify.example.gov.cn/hooks/kannel/dlr", hook_token=TOKEN)
        assert await send_one(channel, message()) == Sent("d42")
        assert await send_one(channel, resent) == Sent("d42-r1")
    assert [seen.query["dlr-url"].split("&sig=")[0].rsplit("id=", 1)[1] for seen in smsbox.seen] == ["d42", "d42-r1"]
    assert f"sig={dlr_signature(TOKEN, 'kannel', 'd42-r1')}" in smsbox.seen[1].query["dlr-url"]
    assert channel.receipt_ids(42) == ["d42"] and channel.receipt_ids(42, 1) == ["d42-r1"]


def test_dlr_signature_is_an_hmac_of_alias_and_message_id() -> None:
    expected = hmac.new(TOKEN.encode(), b"kannel-dlr\nsms-kannel\nd42", hashlib.sha256).hexdigest()[:32]
    assert dlr_signature(TOKEN, "sms-kannel", "d42") == expected
    assert len({dlr_signature(TOKEN, "sms-kannel", "d42"), dlr_signature(TOKEN, "sms-kannel", "d43"),
                dlr_signature(TOKEN, "sms-kannel2", "d42"), dlr_signature("other", "sms-kannel", "d42")}) == 4


async def test_gsm_text_has_no_coding_and_no_dlr_without_dlr_url() -> None:
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as smsbox:
        assert await send_one(adapter(smsbox.url), message("Water outage Sat 9-12")) == Sent("d42")
    query = smsbox.seen[0].query
    assert query["text"] == "Water outage Sat 9-12"
    assert "coding" not in query and "dlr-url" not in query and "dlr-mask" not in query and "from" not in query


@pytest.mark.parametrize(
    ("msg", "options", "expected_code"),
    [
        (message(recipient="+86 138 0013 8000"), {}, "invalid-number"),
        (message(recipient="13800138000+13900139000"), {}, "invalid-number"),
        (message(text="警" * 71), {"max_segments": 1}, "too-long"),
    ],
)
async def test_refused_before_sending(msg: OutboundMessage, options: dict[str, Any], expected_code: str) -> None:
    async with fake_gateway() as smsbox:
        result = await send_one(adapter(smsbox.url, **options), msg)
    assert isinstance(result, Failed) and result.reason_code == expected_code
    assert smsbox.seen == []


async def test_one_result_per_message_in_order() -> None:
    async with fake_gateway(Reply(202, "0: Accepted")) as smsbox:
        channel = adapter(smsbox.url)
        await channel.open()
        try:
            results = await channel.send([message(delivery_id=1), message(recipient="x", delivery_id=2),
                                          message(delivery_id=3)])
        finally:
            await channel.close()
    assert [type(r) for r in results] == [Sent, Failed, Sent]
    assert results[0] == Sent("d1") and results[2] == Sent("d3")


def test_options_reject_unknown_keys_and_bad_urls() -> None:
    with pytest.raises(ValueError, match="extra"):
        KannelOptions.model_validate({"username": "u", "password": "p", "dlr_maks": 3})
    with pytest.raises(ValueError, match="http"):
        KannelOptions.model_validate({"username": "u", "password": "p", "dlr_url": "ftp://x/y"})
    options = KannelOptions.model_validate({"username": "u", "password": "p", "signature": "【昌乐县政府】"})
    assert options.signature == "昌乐县政府"
    assert "p" not in repr(options.password)


# ------------------------------------------------------------------------------------------- real Kannel


@pytest.fixture
async def hook_server(store: Store, settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    """The app with the hooks on a real port; its settings declare the alias ``kannel`` and its hook token."""
    async with kannel_hook_app(store, settings, TOKEN) as served:
        yield served


@pytest.fixture
async def kannel(tmp_path: Path, hook_server: tuple[str, Settings]) -> AsyncIterator[KannelPeer]:
    async with kannel_peer(tmp_path, mo_hook_url(hook_server[0], TOKEN)) as peer:
        yield peer


async def _approved_alert(store: Store) -> int:
    await store.upsert_department("environment", "县生态环境分局", ["air-quality"])
    data = {"topic": "air-quality", "title": "重污染天气橙色预警", "body": "明起三天减少户外活动。",
            "target": {"areas": ["370725"]}, "channels": ["sms"]}
    notice, _ = await store.create_notice(NoticeIn.model_validate(data), department="environment", created_by=None,
                                          actor="test")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    return notice.id


async def _states(store: Store, notice_id: int) -> list[tuple[str, str | None]]:
    deliveries, _ = await store.list_deliveries(notice_id, None, 100)
    return [(d.state, d.last_error) for d in deliveries]


@pytest.mark.peer("kannel")
async def test_chinese_alert_reaches_the_smsc_intact_and_its_dlr_marks_it_delivered(
    store: Store, hook_server: tuple[str, Settings], kannel: KannelPeer
) -> None:
    base, app_settings = hook_server
    await store.create_subscriber(
        SubscriberIn.model_validate({"name": "王芳", "phone": PHONE, "area_code": VILLAGE_A1, "channels": ["sms"]}),
        "test",
    )
    notice_id = await _approved_alert(store)
    channel = KannelChannel("kannel", KannelOptions.model_validate({
        "url": kannel.sendsms_url, "username": SENDSMS_USER, "password": SENDSMS_PASSWORD, "hook_token": TOKEN,
        "dlr_url": f"{base}/hooks/kannel/dlr", "signature": "昌乐县政府", "unsubscribe_text": "回TD退订",
    }))
    # fakesmsc acknowledges at once, so its DLRs usually reach the hook before the engine has recorded
    # the send: the engine keeps such early receipts and applies them when it records the send.
    await channel.open()
    try:
        await Engine(store, app_settings, {"kannel": channel}).run_until_idle()
    finally:
        await channel.close()

    async def delivered() -> bool:
        return [s for s, _ in await _states(store, notice_id)] == ["delivered"]

    await wait_until(delivered, "the DLR to mark the delivery delivered")
    [(_, sms_id)] = [(d.state, d.provider_message_id) for d in (await store.list_deliveries(notice_id, None, 9))[0]]
    [sms] = kannel.received()
    assert (sms.sender, sms.receiver, sms.kind) == (SENDER, PHONE, "ucs-2")
    # the channel's registered signature leads, the issuing department is named in the text
    assert sms.text == "【昌乐县政府】重污染天气橙色预警：明起三天减少户外活动。（县生态环境分局）回TD退订"

    async def stored_receipts() -> list[tuple[str, str]]:
        return sorted(await read_rows(app_settings.database.url, "SELECT status, provider_message_id FROM receipts"))

    async def both_reports_stored() -> bool:  # the SMSC-submit and the handset reports may arrive in any order
        return len(await stored_receipts()) >= 2

    await wait_until(both_reports_stored, "both delivery reports")
    assert await stored_receipts() == [("delivered", sms_id), ("submitted", sms_id)]


@pytest.mark.peer("kannel")
async def test_unroutable_number_fails_and_its_rejection_dlr_is_harmless(
    store: Store, hook_server: tuple[str, Settings], kannel: KannelPeer
) -> None:
    base, _ = hook_server
    channel = KannelChannel("kannel", KannelOptions.model_validate({
        "url": kannel.sendsms_url, "username": SENDSMS_USER, "password": SENDSMS_PASSWORD, "hook_token": TOKEN,
        "dlr_url": f"{base}/hooks/kannel/dlr",
    }))
    result = await send_one(channel, message(recipient="9991234567"))
    assert result == Failed("unroutable", "Not routable. Do not try again.")
    wrong = KannelChannel("kannel", KannelOptions(url=kannel.sendsms_url, username=SENDSMS_USER, password="wrong"))
    assert (await send_one(wrong, message())) == Failed("auth", "Kannel refused the username or password")
    assert kannel.received() == []


def test_the_docs_show_the_sms_service_the_tests_run() -> None:
    docs = Path(__file__).parent.parent / "docs"
    for page in ("kannel.md", "receipts.md"):
        lines = (docs / page).read_text(encoding="utf-8").splitlines()
        get_urls = [line for line in lines if "/hooks/kannel/mo?" in line]
        assert get_urls, page
        for line in get_urls:
            assert "alias=sms-kannel&token=" in line and f"&{MO_ESCAPES}" in line and "%a" not in line, (page, line)


@pytest.mark.peer("kannel")
@pytest.mark.parametrize("reply", ["TD", "退订", "ＴＤ "])  # the last two travel as UCS-2 (coding 2)
async def test_an_opt_out_reply_through_kannel_unsubscribes_the_resident_from_sms(
    store: Store, hook_server: tuple[str, Settings], kannel: KannelPeer, reply: str
) -> None:
    resident = await store.create_subscriber(
        SubscriberIn.model_validate({"name": "李强", "phone": "+8613900139000", "area_code": VILLAGE_A1,
                                     "channels": ["sms"]}), "test",
    )
    other = await store.create_subscriber(
        SubscriberIn.model_validate({"name": "张伟", "phone": "+8613700137000", "area_code": VILLAGE_A1,
                                     "channels": ["sms"]}), "test",
    )

    async def opted_out() -> bool:
        return "sms" in (await store.get_subscriber(resident.id)).opt_out_channels

    await kannel.inject_mo("13900139000", reply, opted_out)
    assert (await store.get_subscriber(other.id)).opt_out_channels == []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hook_server[0]}/hooks/kannel/mo?alias=kannel&token=bad&from=1&text=TD") as resp:
            assert resp.status == 403
