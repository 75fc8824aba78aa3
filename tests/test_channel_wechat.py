"""The WeChat Official Account adapter and the shared token cache, against the fake platform."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.wechat_official import WechatOfficialChannel, WechatOfficialOptions, seconds_until_quota_reset
from channels.wechat_token import IssuedToken, MemoryTokenCache, TokenCaches, TokenError
from tests.fake_wechat import FakeClock, FakeWechat

FOLLOWERS = [f"oia2TjuEGTNoeX76QEjQNrcURx{n:02d}" for n in range(10)]
UNFOLLOWED = "oia2TjuEGTNoeX76QEjQNrcUGONE"
STRANGER = "o-not-an-openid-of-this-account"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def message(openid: str, n: int = 1) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=n,
        notice_id=7,
        channel="wechat",
        alias="wechat",
        recipient=openid,
        text="明日8时至20时有暴雨,请减少外出",
        subject="暴雨蓝色预警",
        idempotency_key=f"n7-s{n}-wechat",
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    async with FakeWechat(followers=set(FOLLOWERS), former_followers={UNFOLLOWED}) as server:
        yield server


def make_channel(fake: FakeWechat, **overrides: object) -> WechatOfficialChannel:
    options = {
        "appid": fake.appid,
        "secret": fake.secret,
        "template_id": fake.template_id,
        "api_base": fake.url,
        "url": "https://notice.example.gov.cn/n/{notice_id}",
        "fixed_data": {"thing3": "县应急管理局"},
        **overrides,
    }
    channel = WechatOfficialChannel("wechat", WechatOfficialOptions.model_validate(options))
    channel.tokens = MemoryTokenCache(channel.fetch_token, clock=fake.clock)
    return channel


@pytest.fixture
async def channel(fake: FakeWechat) -> AsyncIterator[WechatOfficialChannel]:
    adapter = make_channel(fake)
    await adapter.open()
    yield adapter
    await adapter.close()


async def test_template_message_body_and_msgid(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    results = await channel.send([message(FOLLOWERS[0], 1), message(FOLLOWERS[1], 2)])

    assert results == [Sent("3487542469355618313"), Sent("3487542469355618314")]
    first = fake.received[0]
    assert first["touser"] == FOLLOWERS[0]
    assert first["template_id"] == fake.template_id
    assert first["client_msg_id"] == "n7-s1-wechat"
    assert first["url"] == "https://notice.example.gov.cn/n/7"
    assert first["data"] == {
        "thing1": {"value": "暴雨蓝色预警"},
        "thing2": {"value": "明日8时至20时有暴雨,请减少外出"},
        "thing3": {"value": "县应急管理局"},
    }
    assert fake.token_requests == [
        {"grant_type": "client_credential", "appid": fake.appid, "secret": fake.secret, "force_refresh": False}
    ]


async def test_miniprogram_page_names_the_notice(fake: FakeWechat) -> None:
    adapter = make_channel(fake, miniprogram={"appid": "wxmini0001", "pagepath": "pages/notice?id={notice_id}"})
    await adapter.open()
    try:
        assert isinstance((await adapter.send([message(FOLLOWERS[0], 1)]))[0], Sent)
    finally:
        await adapter.close()
    assert fake.received[0]["miniprogram"] == {"appid": "wxmini0001", "pagepath": "pages/notice?id=7"}


async def test_token_is_cached_across_sends(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    await channel.send([message(FOLLOWERS[0], 1)])
    await channel.send([message(FOLLOWERS[1], 2)])
    assert len(fake.token_requests) == 1


async def test_token_expiring_mid_batch_is_refreshed_once(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    await channel.tokens.token()
    assert fake.latest is not None
    fake.latest.sends_left = 2  # the current token dies after two messages
    batch = [message(openid, n) for n, openid in enumerate(FOLLOWERS[:5])]

    results = await channel.send(batch)

    assert all(isinstance(r, Sent) for r in results)
    assert [body["touser"] for body in fake.received] == FOLLOWERS[:5]
    assert len(fake.token_requests) == 2
    assert fake.send_calls == 6  # five messages plus the one answered 42001


async def test_stale_token_by_clock_is_fetched_before_sending(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    await channel.send([message(FOLLOWERS[0], 1)])
    fake.clock.advance(7200 - 60)  # inside the refresh margin: the old token still works but is due

    results = await channel.send([message(FOLLOWERS[1], 2)])

    assert isinstance(results[0], Sent)
    assert len(fake.token_requests) == 2
    assert fake.send_calls == 2  # no call was spent on a rejected token


async def test_token_not_latest_40001_refreshes(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    await channel.send([message(FOLLOWERS[0], 1)])
    fake.tokens.clear()  # another server force-refreshed: our token is "not latest"
    fake.latest = None

    results = await channel.send([message(FOLLOWERS[1], 2), message(FOLLOWERS[2], 3)])

    assert all(isinstance(r, Sent) for r in results)
    assert len(fake.token_requests) == 2


async def test_refresh_at_most_once_per_send(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    fake.expire_after_sends = 1  # every token dies after one message
    batch = [message(openid, n) for n, openid in enumerate(FOLLOWERS[:4])]

    results = await channel.send(batch)

    assert isinstance(results[0], Sent) and isinstance(results[1], Sent)
    assert all(isinstance(r, Retry) for r in results[2:])
    assert len(fake.token_requests) == 2
    assert fake.send_calls == 4  # 1, 2 (42001 then resent), 1 (42001 again); the fourth is not sent


async def test_revoked_follower_fails_unreachable_others_sent(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    batch = [message(FOLLOWERS[0], 1), message(UNFOLLOWED, 2), message(FOLLOWERS[1], 3), message(STRANGER, 4)]

    results = await channel.send(batch)

    assert isinstance(results[0], Sent) and isinstance(results[2], Sent)
    assert isinstance(results[1], Failed) and results[1].reason_code == "unreachable"
    assert "43004" in results[1].detail
    assert isinstance(results[3], Failed) and results[3].reason_code == "unreachable"
    assert "40003" in results[3].detail


async def test_daily_quota_pauses_the_rest_of_the_batch(fake: FakeWechat) -> None:
    fake.daily_quota = 2
    eleven_pm = datetime(2024, 5, 1, 23, 0, tzinfo=SHANGHAI).timestamp()
    adapter = make_channel(fake)
    adapter._wall_clock = lambda: eleven_pm
    await adapter.open()
    try:
        results = await adapter.send([message(openid, n) for n, openid in enumerate(FOLLOWERS[:5])])
    finally:
        await adapter.close()

    assert isinstance(results[0], Sent) and isinstance(results[1], Sent)
    assert results[2:] == [Retry("daily template-message quota reached", 3600.0)] * 3
    assert fake.send_calls == 3  # nothing was called after the 45009


def test_quota_resets_at_midnight_in_shanghai() -> None:
    noon = datetime(2024, 5, 1, 12, 0, tzinfo=SHANGHAI).timestamp()
    assert seconds_until_quota_reset(noon) == 12 * 3600
    just_after = datetime(2024, 5, 2, 0, 0, 30, tzinfo=SHANGHAI).timestamp()
    assert seconds_until_quota_reset(just_after) == 24 * 3600 - 30


@pytest.mark.parametrize(("errcode", "expected"), [(-1, Retry), (48001, Failed)])
async def test_scripted_errcodes(
    fake: FakeWechat, channel: WechatOfficialChannel, errcode: int, expected: type[Retry | Failed]
) -> None:
    fake.scripted.append(errcode)
    results = await channel.send([message(FOLLOWERS[0], 1), message(FOLLOWERS[1], 2)])
    assert isinstance(results[0], expected)
    assert isinstance(results[1], Sent)
    if errcode == 48001:
        assert isinstance(results[0], Failed) and results[0].reason_code == "errcode-48001"


async def test_minute_quota_pauses_the_batch(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    fake.scripted.append(45011)
    results = await channel.send([message(FOLLOWERS[0], 1), message(FOLLOWERS[1], 2)])
    assert results == [Retry("minute quota reached", 60.0)] * 2
    assert fake.send_calls == 1


async def test_aliases_of_one_account_share_a_token(fake: FakeWechat) -> None:
    caches = TokenCaches(clock=fake.clock)
    first, second = make_channel(fake), make_channel(fake, template_id=fake.template_id, url=None)
    for adapter in (first, second):
        adapter.use_token_caches(caches)
        await adapter.open()
    try:
        assert isinstance((await first.send([message(FOLLOWERS[0], 1)]))[0], Sent)
        assert isinstance((await second.send([message(FOLLOWERS[1], 2)]))[0], Sent)
    finally:
        await first.close()
        await second.close()
    assert len(fake.token_requests) == 1


async def test_wrong_template_and_empty_value_fail(fake: FakeWechat) -> None:
    adapter = make_channel(fake, template_id="tpl-unknown")
    await adapter.open()
    try:
        [wrong_template] = await adapter.send([message(FOLLOWERS[0], 1)])
    finally:
        await adapter.close()
    assert isinstance(wrong_template, Failed) and wrong_template.reason_code == "errcode-40037"


async def test_bad_secret_fails_the_batch_without_sending(fake: FakeWechat) -> None:
    adapter = make_channel(fake, secret="wrong-secret-value")
    await adapter.open()
    try:
        results = await adapter.send([message(FOLLOWERS[0], 1), message(FOLLOWERS[1], 2)])
    finally:
        await adapter.close()
    assert [r.reason_code for r in results if isinstance(r, Failed)] == ["token", "token"]
    assert fake.send_calls == 0


async def test_client_msg_id_lets_the_platform_drop_a_resend(fake: FakeWechat, channel: WechatOfficialChannel) -> None:
    first = await channel.send([message(FOLLOWERS[0], 1)])
    again = await channel.send([message(FOLLOWERS[0], 1)])
    assert first == again
    assert len(fake.received) == 1


async def test_unreachable_platform_is_retry() -> None:
    async with FakeWechat() as gone:
        url = gone.url
    adapter = WechatOfficialChannel(
        "wechat", WechatOfficialOptions(appid="wx1", secret="s" * 8, template_id="t", api_base=url)
    )
    await adapter.open()
    try:
        results = await adapter.send([message(FOLLOWERS[0], 1)])
    finally:
        await adapter.close()
    assert isinstance(results[0], Retry)


async def test_logs_hold_no_secret_token_or_openid(
    fake: FakeWechat, channel: WechatOfficialChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.expire_after_sends = 1
    fake.scripted.append(-1)
    await channel.send([message(UNFOLLOWED, 1), message(FOLLOWERS[0], 2), message(STRANGER, 3)])
    assert caplog.records  # failures were logged ...
    for value in [fake.secret, UNFOLLOWED, FOLLOWERS[0], STRANGER, *fake.tokens]:
        assert value not in caplog.text  # ... without secrets, tokens or openids


def test_options_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        WechatOfficialOptions.model_validate({"appid": "a", "secret": "s", "template_id": "t", "templte": "x"})
    options = WechatOfficialOptions(appid="a", secret="very-secret", template_id="t")
    assert "very-secret" not in repr(options)


async def test_cache_single_flight_and_compare_and_swap() -> None:
    calls: list[bool] = []
    release = asyncio.Event()

    async def fetch(force: bool) -> IssuedToken:
        calls.append(force)
        await release.wait()
        return IssuedToken(f"token-{len(calls)}", 7200)

    cache = MemoryTokenCache(fetch, clock=FakeClock())
    waiting = [asyncio.create_task(cache.token()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert set(await asyncio.gather(*waiting)) == {"token-1"}
    assert calls == [False]

    refreshed = await asyncio.gather(*(cache.refresh("token-1") for _ in range(10)))
    assert set(refreshed) == {"token-2"}
    assert calls == [False, False]


async def test_cache_forces_a_new_token_when_the_platform_repeats_the_rejected_one() -> None:
    calls: list[bool] = []

    async def fetch(force: bool) -> IssuedToken:
        calls.append(force)
        return IssuedToken("fresh" if force else "same", 7200)

    cache = MemoryTokenCache(fetch, clock=FakeClock())
    assert await cache.token() == "same"
    assert await cache.refresh("same") == "fresh"
    assert calls == [False, False, True]


async def test_cache_failure_propagates_and_is_not_cached() -> None:
    answers: list[IssuedToken | TokenError] = [TokenError(Retry("busy")), IssuedToken("ok", 7200)]

    async def fetch(force: bool) -> IssuedToken:
        answer = answers.pop(0)
        if isinstance(answer, TokenError):
            raise answer
        return answer

    cache = MemoryTokenCache(fetch, clock=FakeClock())
    with pytest.raises(TokenError):
        await cache.token()
    assert await cache.token() == "ok"


async def test_short_lived_token_is_kept_for_half_its_life() -> None:
    clock = FakeClock()
    fetched: list[int] = []

    async def fetch(force: bool) -> IssuedToken:
        fetched.append(1)
        return IssuedToken(f"t{len(fetched)}", 200)  # shorter than the refresh margin

    cache = MemoryTokenCache(fetch, clock=clock)
    assert await cache.token() == "t1"
    clock.advance(99)
    assert await cache.token() == "t1"
    clock.advance(2)
    assert await cache.token() == "t2"
