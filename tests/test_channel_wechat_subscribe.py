"""The WeChat subscribe-notification adapter (bizsend) against the fake platform."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.wechat_official import WechatOfficialChannel, WechatOfficialOptions
from channels.wechat_subscribe import WechatSubscribeChannel, WechatSubscribeOptions, fit_value
from channels.wechat_token import MemoryTokenCache, TokenCaches
from tests.fake_wechat import FakeWechat

SUBSCRIBED = [f"oia2TjuEGTNoeX76QEjQNrcSUB{n:02d}" for n in range(6)]
USED_UP = "oia2TjuEGTNoeX76QEjQNrcUSED"  # subscribed once and already got that message
FOLLOWER_ONLY = "oia2TjuEGTNoeX76QEjQNrcFOLL"  # follows the account, never subscribed
STRANGER = "o-not-an-openid-of-this-account"
TEXT = "明日8时至20时有暴雨,请减少外出,注意防范城乡积涝和山洪地质灾害"  # longer than a thing keyword


def message(openid: str, n: int = 1, text: str = TEXT, subject: str = "暴雨蓝色预警") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=n,
        notice_id=7,
        channel="wechat",
        alias="wechat-sub",
        recipient=openid,
        text=text,
        subject=subject,
        idempotency_key=f"n7-s{n}-wechat",
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    subscriptions = {openid: 1 for openid in SUBSCRIBED} | {USED_UP: 0}
    async with FakeWechat(followers={FOLLOWER_ONLY}, subscriptions=subscriptions) as server:
        yield server


def make_channel(fake: FakeWechat, **overrides: object) -> WechatSubscribeChannel:
    options = {
        "appid": fake.appid,
        "secret": fake.secret,
        "template_id": fake.template_id,
        "api_base": fake.url,
        "page": "https://notice.example.gov.cn/n/{notice_id}",
        "fixed_data": {"thing3": "县应急管理局"},
        **overrides,
    }
    channel = WechatSubscribeChannel("wechat-sub", WechatSubscribeOptions.model_validate(options))
    channel.tokens = MemoryTokenCache(channel.fetch_token, clock=fake.clock)
    return channel


@pytest.fixture
async def channel(fake: FakeWechat) -> AsyncIterator[WechatSubscribeChannel]:
    adapter = make_channel(fake)
    await adapter.open()
    yield adapter
    await adapter.close()


async def test_bizsend_body_and_an_accepted_message_recorded_under_its_own_id(
    fake: FakeWechat, channel: WechatSubscribeChannel
) -> None:
    """bizsend answers errcode 0 without a msgid: the message was sent, once (a Retry would send it again)."""
    results = await channel.send([message(SUBSCRIBED[0], 1), message(SUBSCRIBED[1], 2)])

    assert results == [Sent("d1"), Sent("d2")]
    assert len(fake.received) == 2
    assert fake.received[0] == {
        "touser": SUBSCRIBED[0],
        "template_id": fake.template_id,
        "data": {
            "thing3": {"value": "县应急管理局"},
            "thing1": {"value": "暴雨蓝色预警"},
            "thing2": {"value": "明日8时至20时有暴雨,请减少外出,注…"},  # cut to 20 characters
        },
        "page": "https://notice.example.gov.cn/n/7",
    }
    assert fake.subscriptions[SUBSCRIBED[0]] == 0  # the one-time subscription is used


async def test_a_reminder_sent_again_is_recorded_under_an_id_of_its_own(channel: WechatSubscribeChannel) -> None:
    [result] = await channel.send([dataclasses.replace(message(SUBSCRIBED[0], 1), resend=1)])

    assert result == Sent("d1-r1")  # not the first send's "d1"


async def test_refused_user_fails_unreachable_others_sent(fake: FakeWechat, channel: WechatSubscribeChannel) -> None:
    batch = [
        message(SUBSCRIBED[0], 1),
        message(USED_UP, 2),
        message(SUBSCRIBED[1], 3),
        message(FOLLOWER_ONLY, 4),
        message(STRANGER, 5),
    ]

    results = await channel.send(batch)

    assert isinstance(results[0], Sent) and isinstance(results[2], Sent)
    for refused in (results[1], results[3]):
        assert isinstance(refused, Failed) and refused.reason_code == "unreachable"
        assert "43101" in refused.detail
    assert isinstance(results[4], Failed) and results[4].reason_code == "unreachable"
    assert "40003" in results[4].detail


async def test_one_time_subscription_is_used_once(fake: FakeWechat, channel: WechatSubscribeChannel) -> None:
    [first] = await channel.send([message(SUBSCRIBED[0], 1)])
    [second] = await channel.send([message(SUBSCRIBED[0], 2)])
    assert isinstance(first, Sent)
    assert isinstance(second, Failed) and second.reason_code == "unreachable"


async def test_token_expiring_mid_batch_is_refreshed_once(fake: FakeWechat, channel: WechatSubscribeChannel) -> None:
    await channel.tokens.token()
    assert fake.latest is not None
    fake.latest.sends_left = 2
    batch = [message(openid, n) for n, openid in enumerate(SUBSCRIBED[:5])]

    results = await channel.send(batch)

    assert all(isinstance(r, Sent) for r in results)
    assert [body["touser"] for body in fake.received] == SUBSCRIBED[:5]
    assert len(fake.token_requests) == 2
    assert fake.send_calls == 6  # five messages plus the one answered 42001


async def test_invalid_data_fails_47003(fake: FakeWechat) -> None:
    # character_string is not cut (a cut code would be wrong): 40 characters are refused by WeChat.
    adapter = make_channel(fake, body_key="character_string2")
    await adapter.open()
    try:
        results = await adapter.send([message(SUBSCRIBED[0], 1, text="A" * 40), message(SUBSCRIBED[1], 2, text="A1")])
    finally:
        await adapter.close()
    assert isinstance(results[0], Failed) and results[0].reason_code == "errcode-47003"
    assert "character_string2" in results[0].detail
    assert isinstance(results[1], Sent)
    assert fake.subscriptions[SUBSCRIBED[0]] == 1  # a refused message uses no subscription


async def test_empty_value_fails_47003(fake: FakeWechat, channel: WechatSubscribeChannel) -> None:
    [result] = await channel.send([message(SUBSCRIBED[0], 1, text=" \n ")])
    assert isinstance(result, Failed) and result.reason_code == "errcode-47003"


@pytest.mark.parametrize(("errcode", "expected"), [(-1, Retry), (40037, Failed)])
async def test_scripted_errcodes(
    fake: FakeWechat, channel: WechatSubscribeChannel, errcode: int, expected: type[Retry | Failed]
) -> None:
    fake.scripted.append(errcode)
    results = await channel.send([message(SUBSCRIBED[0], 1), message(SUBSCRIBED[1], 2)])
    assert isinstance(results[0], expected)
    assert isinstance(results[1], Sent)


async def test_daily_quota_names_subscribe_messages(fake: FakeWechat, channel: WechatSubscribeChannel) -> None:
    fake.daily_quota = 1
    results = await channel.send([message(openid, n) for n, openid in enumerate(SUBSCRIBED[:3])])
    assert isinstance(results[0], Sent)
    assert all(isinstance(r, Retry) and r.reason == "daily subscribe-message quota reached" for r in results[1:])
    assert fake.send_calls == 2


async def test_miniprogram_page_names_the_notice(fake: FakeWechat) -> None:
    adapter = make_channel(fake, page=None, miniprogram={"appid": "wxmini0001", "pagepath": "pages/n?id={notice_id}"})
    await adapter.open()
    try:
        assert isinstance((await adapter.send([message(SUBSCRIBED[0], 1)]))[0], Sent)
    finally:
        await adapter.close()
    assert fake.received[0]["miniprogram"] == {"appid": "wxmini0001", "pagepath": "pages/n?id=7"}
    assert "page" not in fake.received[0]


async def test_template_and_subscribe_aliases_share_a_token(fake: FakeWechat) -> None:
    caches = TokenCaches(clock=fake.clock)
    fake.followers.add(SUBSCRIBED[1])
    options = {"appid": fake.appid, "secret": fake.secret, "template_id": fake.template_id, "api_base": fake.url}
    template = WechatOfficialChannel("wechat", WechatOfficialOptions.model_validate(options))
    subscribe = make_channel(fake)
    for adapter in (template, subscribe):
        adapter.use_token_caches(caches)
        await adapter.open()
    try:
        assert isinstance((await subscribe.send([message(SUBSCRIBED[0], 1)]))[0], Sent)
        assert isinstance((await template.send([message(SUBSCRIBED[1], 2)]))[0], Sent)
    finally:
        await template.close()
        await subscribe.close()
    assert len(fake.token_requests) == 1


def test_fit_value_cuts_free_text_only() -> None:
    twenty = "一二三四五六七八九十" * 2
    assert fit_value("thing1", twenty) == twenty
    assert fit_value("thing1", twenty + "一") == twenty[:19] + "…"
    assert fit_value("thing12", "line one\nline two") == "line one line two"
    assert fit_value("phrase4", "审核已经通过") == "审核已经…"
    assert fit_value("name2", "欧阳一二三四五六七八九") == "欧阳一二三四五六七…"
    assert fit_value("name2", "Zhang San") == "Zhang San"
    assert fit_value("number5", "1" * 40) == "1" * 40  # never cut: WeChat answers 47003
    assert fit_value("time3", "2024-05-01 08:00~2024-05-01 20:00") == "2024-05-01 08:00~2024-05-01 20:00"


def test_fixed_data_too_long_is_a_config_error() -> None:
    base = {"appid": "a", "secret": "s", "template_id": "t"}
    with pytest.raises(ValidationError, match="thing3"):
        WechatSubscribeOptions.model_validate({**base, "fixed_data": {"thing3": "县" * 21}})
    with pytest.raises(ValidationError):
        WechatSubscribeOptions.model_validate({**base, "url": "https://x"})  # template-only option
    assert WechatSubscribeOptions.model_validate({**base, "fixed_data": {"thing3": "县" * 20}})
