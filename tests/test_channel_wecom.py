"""The WeCom application-message adapter against the fake WeCom API."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.wechat_token import MemoryTokenCache, TokenCaches
from channels.wecom_app import WecomAppChannel, WecomAppOptions
from tests.fake_wecom import FakeWecom

STAFF = ["LiWei", "wangfang", "zhao.min", "sun-lei", "zhouqiang"]


TEXT = "今晚22时起停水,请提前储水。"


def message(userid: str, n: int, text: str = TEXT, subject: str | None = "停水通知") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=n,
        notice_id=3,
        channel="wecom",
        alias="wecom",
        recipient=userid,
        text=text,
        subject=subject,
        idempotency_key=f"n3-s{n}-wecom",
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeWecom]:
    async with FakeWecom(users=set(STAFF)) as server:
        yield server


async def opened(fake: FakeWecom, **overrides: object) -> WecomAppChannel:
    options = {
        "corpid": fake.corpid,
        "corpsecret": fake.corpsecret,
        "agentid": fake.agentid,
        "api_base": fake.url,
        **overrides,
    }
    channel = WecomAppChannel("wecom", WecomAppOptions.model_validate(options))
    channel.tokens = MemoryTokenCache(channel.fetch_token, clock=fake.clock, can_force=False)
    await channel.open()
    return channel


@pytest.fixture
async def channel(fake: FakeWecom) -> AsyncIterator[WecomAppChannel]:
    adapter = await opened(fake)
    yield adapter
    await adapter.close()


async def test_one_call_for_users_with_the_same_text(fake: FakeWecom, channel: WecomAppChannel) -> None:
    results = await channel.send([message(user, n) for n, user in enumerate(STAFF)])

    assert results == [Sent("msg-1")] * len(STAFF)
    [body] = fake.received
    assert body["touser"] == "|".join(STAFF)
    assert body["agentid"] == fake.agentid
    assert body["msgtype"] == "text"
    assert body["text"] == {"content": "停水通知\n今晚22时起停水,请提前储水。"}
    assert body["enable_duplicate_check"] == 1 and body["duplicate_check_interval"] == 1800
    assert fake.token_calls == 1


async def test_different_texts_get_their_own_calls(fake: FakeWecom, channel: WecomAppChannel) -> None:
    batch = [message(STAFF[0], 1), message(STAFF[1], 2, text="另一条通知"), message(STAFF[2], 3)]
    results = await channel.send(batch)
    assert results == [Sent("msg-1"), Sent("msg-2"), Sent("msg-1")]
    assert [body["touser"] for body in fake.received] == [f"{STAFF[0]}|{STAFF[2]}", STAFF[1]]


async def test_invaliduser_and_unlicenseduser_fail_only_those(fake: FakeWecom, channel: WecomAppChannel) -> None:
    fake.unlicensed = {"zhouqiang"}
    batch = [message("LiWei", 1), message("Left.The.Village", 2), message("wangfang", 3), message("ZhouQiang", 4)]

    results = await channel.send(batch)

    assert results[0] == Sent("msg-1") and results[2] == Sent("msg-1")
    assert results[1] == Failed("unreachable", "invaliduser")  # answered lower-cased, matched anyway
    assert results[3] == Failed("unreachable", "unlicenseduser")
    assert set(fake.delivered) == {"liwei", "wangfang"}


async def test_all_users_invalid_is_81013_unreachable(fake: FakeWecom, channel: WecomAppChannel) -> None:
    results = await channel.send([message("nobody1", 1), message("nobody2", 2)])
    assert all(isinstance(r, Failed) and r.reason_code == "unreachable" and "81013" in r.detail for r in results)


async def test_token_expired_mid_batch_refreshes_once(fake: FakeWecom, channel: WecomAppChannel) -> None:
    await channel.send([message(STAFF[0], 1)])
    fake.expire_tokens()  # invalidated early, as WeCom may do
    batch = [message(STAFF[1], 2, text="第一条"), message(STAFF[2], 3, text="第二条"), message(STAFF[3], 4)]

    results = await channel.send(batch)

    assert all(isinstance(r, Sent) for r in results)
    assert fake.token_calls == 2
    assert fake.send_calls == 1 + 4  # the first send, one 42001, then three calls


async def test_token_rejected_again_after_refresh_retries_the_rest(fake: FakeWecom, channel: WecomAppChannel) -> None:
    fake.scripted = [40014, 40014]
    batch = [message(STAFF[0], 1, text="a"), message(STAFF[1], 2, text="b")]

    results = await channel.send(batch)

    assert all(isinstance(r, Retry) for r in results)
    assert fake.send_calls == 2  # the refused call and its one repeat; "b" was not attempted
    assert fake.token_calls == 2


async def test_frequency_limit_pauses_the_batch(fake: FakeWecom, channel: WecomAppChannel) -> None:
    fake.scripted = [45009]
    batch = [message(STAFF[0], 1, text="a"), message(STAFF[1], 2, text="b"), message(STAFF[2], 3, text="c")]

    results = await channel.send(batch)

    assert results == [Retry("api frequency limit reached (errcode 45009)", 60.0)] * 3
    assert fake.send_calls == 1


@pytest.mark.parametrize(("errcode", "expected"), [(-1, Retry), (45033, Retry), (6000, Retry), (40056, Failed)])
async def test_errcodes(fake: FakeWecom, channel: WecomAppChannel, errcode: int, expected: type) -> None:
    fake.scripted = [errcode]
    results = await channel.send([message(STAFF[0], 1, text="a"), message(STAFF[1], 2, text="b")])
    assert isinstance(results[0], expected)
    assert results[1] == Sent("msg-1")


async def test_wrong_agentid_fails(fake: FakeWecom) -> None:
    adapter = await opened(fake, agentid=999)
    try:
        [result] = await adapter.send([message(STAFF[0], 1)])
    finally:
        await adapter.close()
    assert result == Failed("errcode-40056", "errcode 40056: invalid agentid")


async def test_wrong_secret_fails_every_message_with_token(fake: FakeWecom, caplog: pytest.LogCaptureFixture) -> None:
    adapter = await opened(fake, corpsecret="not-the-secret")
    try:
        results = await adapter.send([message(STAFF[0], 1), message(STAFF[1], 2)])
    finally:
        await adapter.close()
    assert [r.reason_code for r in results if isinstance(r, Failed)] == ["token", "token"]
    assert fake.send_calls == 0
    assert "not-the-secret" not in caplog.text


async def test_textcard_and_markdown_bodies(fake: FakeWecom) -> None:
    card = await opened(fake, msgtype="textcard", card_url="https://notice.example.gov.cn/n/3", card_button="查看")
    markdown = await opened(fake, msgtype="markdown")
    try:
        assert await card.send([message(STAFF[0], 1)]) == [Sent("msg-1")]
        assert await markdown.send([message(STAFF[0], 1)]) == [Sent("msg-2")]
    finally:
        await card.close()
        await markdown.close()
    assert fake.received[0]["textcard"] == {
        "title": "停水通知",
        "description": "今晚22时起停水,请提前储水。",
        "url": "https://notice.example.gov.cn/n/3",
        "btntxt": "查看",
    }
    assert fake.received[1]["markdown"] == {"content": "**停水通知**\n今晚22时起停水,请提前储水。"}


async def test_duplicate_check_keeps_a_resend_from_arriving_twice(fake: FakeWecom, channel: WecomAppChannel) -> None:
    first = await channel.send([message(STAFF[0], 1)])
    again = await channel.send([message(STAFF[0], 1)])
    assert first == again
    assert fake.delivered[STAFF[0].lower()] == [json.dumps({"content": f"停水通知\n{TEXT}"}, ensure_ascii=False)]


async def test_aliases_of_one_app_share_a_token(fake: FakeWecom) -> None:
    caches = TokenCaches(clock=fake.clock)
    text, card = await opened(fake), await opened(fake, msgtype="textcard", card_url="https://notice.example.gov.cn")
    try:
        for adapter in (text, card):
            adapter.use_token_caches(caches)
            assert isinstance((await adapter.send([message(STAFF[0], 1)]))[0], Sent)
    finally:
        await text.close()
        await card.close()
    assert fake.token_calls == 1


def test_options() -> None:
    base = {"corpid": "ww1", "corpsecret": "s", "agentid": 1}
    with pytest.raises(ValidationError, match="card_url"):
        WecomAppOptions.model_validate({**base, "msgtype": "textcard"})
    with pytest.raises(ValidationError):
        WecomAppOptions.model_validate({**base, "msgtype": "news"})
    with pytest.raises(ValidationError):
        WecomAppOptions.model_validate({**base, "touser": "@all"})


async def test_logs_hold_no_userid_secret_or_token(
    fake: FakeWecom, channel: WecomAppChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notifier")
    fake.unlicensed = {"sun-lei"}
    fake.scripted = [-1]
    await channel.send([message("ghost-user", 1, text="x"), message("sun-lei", 2), message("LiWei", 3)])
    assert caplog.records
    for value in ["ghost-user", "sun-lei", "LiWei", fake.corpsecret, *fake.tokens]:
        assert value not in caplog.text
