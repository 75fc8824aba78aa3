"""The group-bot adapters (WeCom robot, DingTalk custom robot, Feishu custom bot) against fake webhooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.dingtalk_bot import DingtalkBotChannel
from channels.feishu_bot import FeishuBotChannel
from channels.wecom_bot import AreaBotChannel, WecomBotChannel, WecomBotOptions
from tests.fake_bots import FakeDingtalk, FakeFeishu, FakeWecomBot
from tests.fake_wechat import FakeClock

TOWN, VILLAGE, OTHER_VILLAGE, NO_GROUP = "370725001", "370725001036", "370725001037", "370725002020"
KEY_TOWN, KEY_VILLAGE = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", "5c2b1e0d-1234-4bc4-97a0-0ec2sifa5bbb"
SECRET_TOWN, SECRET_VILLAGE = "SEC6a1c5ff8f1d9a4e5bd77b1e23b0cf1d2", "SECb8e7d1f2c3a4b5c6d7e8f9a0b1c2d3e4"


def notice(area: str, n: int = 1, text: str = "今日15时起全县禁止露天焚烧秸秆。") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=n,
        notice_id=9,
        channel="bot",
        alias="bots",
        recipient=area,
        text=text,
        subject="秸秆禁烧通知",
        idempotency_key=f"n9-a{area}-{n}",
    )


async def opened(cls: type[AreaBotChannel], clock: FakeClock, **options: Any) -> AreaBotChannel:
    channel = cls("bots", cls.Options.model_validate(options), wall_clock=clock)
    await channel.open()
    return channel


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_declared_rates() -> None:
    assert WecomBotChannel.default_rate_per_minute == 20
    assert DingtalkBotChannel.default_rate_per_minute == 20
    assert FeishuBotChannel.default_rate_per_minute == 100
    assert FeishuBotChannel.default_rate_per_second == 5


def test_area_table_is_validated() -> None:
    ok = WecomBotOptions.model_validate({"areas": {TOWN: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}})
    assert TOWN in ok.areas and "key=k" not in repr(ok)
    bad: dict[str, Any]
    for bad in (
        {"areas": {"town-a": "https://example.org/hook"}},
        {"areas": {TOWN: "ftp://example.org/hook"}},
        {"areas": {}},
        {"areas": {TOWN: {"webhook": "https://example.org/hook", "token": "x"}}},
        {"areas": {TOWN: "https://example.org/hook"}, "msgtype": "news"},
    ):
        with pytest.raises(ValidationError):
            WecomBotOptions.model_validate(bad)


# ------------------------------------------------------------------------------------------------ WeCom robot


@pytest.fixture
async def wecom(clock: FakeClock) -> AsyncIterator[tuple[FakeWecomBot, AreaBotChannel]]:
    async with FakeWecomBot(keys={KEY_TOWN, KEY_VILLAGE}, clock=clock) as fake:
        hook = f"{fake.url}/cgi-bin/webhook/send?key="
        areas = {TOWN: hook + KEY_TOWN, VILLAGE: hook + KEY_VILLAGE, OTHER_VILLAGE: hook + "no-such-key-000000"}
        channel = await opened(WecomBotChannel, clock, areas=areas)
        yield fake, channel
        await channel.close()


async def test_wecom_posts_each_area_into_its_group(wecom: tuple[FakeWecomBot, AreaBotChannel]) -> None:
    fake, channel = wecom
    results = await channel.send([notice(TOWN, 1), notice(VILLAGE, 2), notice(NO_GROUP, 3), notice(OTHER_VILLAGE, 4)])

    assert results[:2] == [Sent(f"n9-a{TOWN}-1"), Sent(f"n9-a{VILLAGE}-2")]
    assert isinstance(results[2], Failed) and results[2].reason_code == "unreachable"
    assert isinstance(results[3], Failed) and results[3].reason_code == "errcode-93000"
    assert fake.posts[KEY_TOWN] == [
        {"msgtype": "text", "text": {"content": "秸秆禁烧通知\n今日15时起全县禁止露天焚烧秸秆。"}}
    ]
    assert len(fake.posts[KEY_VILLAGE]) == 1


async def test_wecom_21st_message_in_a_minute_is_retry_and_pauses_that_robot(
    wecom: tuple[FakeWecomBot, AreaBotChannel], clock: FakeClock
) -> None:
    fake, channel = wecom
    assert all(isinstance(r, Sent) for r in await channel.send([notice(TOWN, n) for n in range(20)]))

    results = await channel.send([notice(TOWN, 21), notice(TOWN, 22), notice(VILLAGE, 23)])

    assert results[0] == results[1]
    assert isinstance(results[0], Retry) and results[0].retry_after == 60
    assert isinstance(results[2], Sent)  # another area's robot is not paused
    assert fake.calls == 20 + 2  # the 22nd message was not posted
    clock.advance(60)
    assert isinstance((await channel.send([notice(TOWN, 24)]))[0], Sent)


async def test_wecom_long_markdown_is_cut_to_the_limit(clock: FakeClock) -> None:
    async with FakeWecomBot(keys={KEY_TOWN}, clock=clock) as fake:
        areas = {TOWN: f"{fake.url}/cgi-bin/webhook/send?key={KEY_TOWN}"}
        channel = await opened(WecomBotChannel, clock, areas=areas, msgtype="markdown")
        try:
            [result] = await channel.send([notice(TOWN, 1, text="长" * 3000)])
        finally:
            await channel.close()
    assert isinstance(result, Sent)
    content = fake.posts[KEY_TOWN][0]["markdown"]["content"]
    assert content.startswith("**秸秆禁烧通知**\n") and content.endswith("…")
    assert len(content.encode()) <= 4096


# ------------------------------------------------------------------------------------------------ DingTalk


@pytest.fixture
async def dingtalk(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with FakeDingtalk(robots={"tok-town": SECRET_TOWN, "tok-village": None}, clock=clock) as fake:
        yield fake


def dingtalk_areas(fake: FakeDingtalk, town_secret: str = SECRET_TOWN) -> dict[str, Any]:
    return {
        TOWN: {"webhook": f"{fake.url}/robot/send?access_token=tok-town", "secret": town_secret},
        VILLAGE: f"{fake.url}/robot/send?access_token=tok-village",
        OTHER_VILLAGE: f"{fake.url}/robot/send?access_token=tok-removed",
    }


async def test_dingtalk_signed_post_is_accepted(dingtalk: FakeDingtalk, clock: FakeClock) -> None:
    channel = await opened(DingtalkBotChannel, clock, areas=dingtalk_areas(dingtalk))
    try:
        results = await channel.send([notice(TOWN, 1), notice(VILLAGE, 2), notice(OTHER_VILLAGE, 3)])
    finally:
        await channel.close()
    assert isinstance(results[0], Sent) and isinstance(results[1], Sent)
    assert isinstance(results[2], Failed) and results[2].reason_code == "errcode-300001"
    assert dingtalk.posts["tok-town"][0]["text"] == {"content": "秸秆禁烧通知\n今日15时起全县禁止露天焚烧秸秆。"}
    signed_query = dingtalk.raw_queries[0]
    assert f"timestamp={round(clock() * 1000)}" in signed_query
    assert signed_query.endswith("%3D")  # the Base64 padding arrives URL-encoded


@pytest.mark.parametrize(("secret", "skew"), [("SECwrong-secret-value", 0.0), (SECRET_TOWN, -7200.0)])
async def test_dingtalk_bad_signature_or_old_timestamp_is_310000(
    dingtalk: FakeDingtalk, clock: FakeClock, secret: str, skew: float
) -> None:
    channel = DingtalkBotChannel(
        "bots",
        DingtalkBotChannel.Options.model_validate({"areas": dingtalk_areas(dingtalk, secret)}),
        wall_clock=lambda: clock() + skew,
    )
    await channel.open()
    try:
        [result] = await channel.send([notice(TOWN, 1)])
    finally:
        await channel.close()
    assert isinstance(result, Failed) and result.reason_code == "errcode-310000"
    assert dingtalk.posts == {}


async def test_dingtalk_too_fast_is_retry_for_ten_minutes(dingtalk: FakeDingtalk, clock: FakeClock) -> None:
    channel = await opened(DingtalkBotChannel, clock, areas=dingtalk_areas(dingtalk), msgtype="markdown")
    try:
        first = await channel.send([notice(TOWN, n) for n in range(20)])
        over = await channel.send([notice(TOWN, 21), notice(TOWN, 22), notice(VILLAGE, 23)])
        clock.advance(120)
        still = await channel.send([notice(TOWN, 24)])
        clock.advance(600)
        again = await channel.send([notice(TOWN, 25)])
    finally:
        await channel.close()
    assert all(isinstance(r, Sent) for r in first)
    assert isinstance(over[0], Retry) and over[0].retry_after == 600 and over[1] == over[0]
    assert isinstance(over[2], Sent)
    assert isinstance(still[0], Retry) and isinstance(again[0], Sent)
    assert dingtalk.posts["tok-town"][0]["markdown"]["title"] == "秸秆禁烧通知"


# ------------------------------------------------------------------------------------------------ Feishu


@pytest.fixture
async def feishu(clock: FakeClock) -> AsyncIterator[FakeFeishu]:
    hooks: dict[str, str | None] = {"hook-town-7f1e2d3c4b5a": SECRET_TOWN, "hook-village-0a1b2c3d": None}
    async with FakeFeishu(hooks=hooks, clock=clock) as fake:
        yield fake


def feishu_areas(fake: FakeFeishu, town_secret: str = SECRET_TOWN) -> dict[str, Any]:
    return {
        TOWN: {"webhook": f"{fake.url}/open-apis/bot/v2/hook/hook-town-7f1e2d3c4b5a", "secret": town_secret},
        VILLAGE: f"{fake.url}/open-apis/bot/v2/hook/hook-village-0a1b2c3d",
    }


async def test_feishu_signed_text_and_post(feishu: FakeFeishu, clock: FakeClock) -> None:
    text = await opened(FeishuBotChannel, clock, areas=feishu_areas(feishu))
    rich = await opened(FeishuBotChannel, clock, areas=feishu_areas(feishu), msg_type="post")
    try:
        assert all(isinstance(r, Sent) for r in await text.send([notice(TOWN, 1), notice(VILLAGE, 2)]))
        assert isinstance((await rich.send([notice(TOWN, 3)]))[0], Sent)
    finally:
        await text.close()
        await rich.close()
    first, second = feishu.posts["hook-town-7f1e2d3c4b5a"]
    assert first["timestamp"] == str(int(clock())) and first["content"] == {
        "text": "秸秆禁烧通知\n今日15时起全县禁止露天焚烧秸秆。"
    }
    assert second["content"]["post"]["zh_cn"]["title"] == "秸秆禁烧通知"
    assert "sign" not in feishu.posts["hook-village-0a1b2c3d"][0]


async def test_feishu_wrong_secret_is_19021(feishu: FakeFeishu, clock: FakeClock) -> None:
    channel = await opened(FeishuBotChannel, clock, areas=feishu_areas(feishu, "not-the-secret"))
    try:
        [result] = await channel.send([notice(TOWN, 1)])
    finally:
        await channel.close()
    assert isinstance(result, Failed) and result.reason_code == "errcode-19021"


async def test_feishu_limits_answer_retry(feishu: FakeFeishu, clock: FakeClock) -> None:
    channel = await opened(FeishuBotChannel, clock, areas=feishu_areas(feishu))
    try:
        burst = await channel.send([notice(TOWN, n) for n in range(6)])  # 6 within one second
        clock.advance(1)
        for _ in range(19):  # 5 a second: 95 more inside the minute, 100 accepted in all
            assert all(isinstance(r, Sent) for r in await channel.send([notice(TOWN, n) for n in range(5)]))
            clock.advance(1)
        [over_minute] = await channel.send([notice(TOWN, 101)])
    finally:
        await channel.close()
    assert all(isinstance(r, Sent) for r in burst[:5])
    assert isinstance(burst[5], Retry) and burst[5].retry_after == 60
    assert isinstance(over_minute, Retry) and over_minute.retry_after == 60
    assert len(feishu.posts["hook-town-7f1e2d3c4b5a"]) == 100


async def test_feishu_body_stays_under_20_kb(feishu: FakeFeishu, clock: FakeClock) -> None:
    channel = await opened(FeishuBotChannel, clock, areas=feishu_areas(feishu))
    try:
        [result] = await channel.send([notice(TOWN, 1, text="长" * 10_000)])
    finally:
        await channel.close()
    assert isinstance(result, Sent)


async def test_unreachable_robot_is_retry_and_logs_no_webhook_secret(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notifier")
    async with FakeFeishu() as gone:
        url = gone.url
    areas = {TOWN: {"webhook": f"{url}/open-apis/bot/v2/hook/hook-town-7f1e2d3c4b5a", "secret": SECRET_TOWN}}
    channel = await opened(FeishuBotChannel, clock, areas=areas)
    try:
        [result] = await channel.send([notice(TOWN, 1)])
    finally:
        await channel.close()
    assert isinstance(result, Retry)
    assert caplog.records
    assert "hook-town-7f1e2d3c4b5a" not in caplog.text and SECRET_TOWN not in caplog.text
