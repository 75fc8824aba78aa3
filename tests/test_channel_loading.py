"""Channels as the service loads them from config: registry, options, prepare, routing and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channels import load_channels
from channels.email_smtp import SmtpEmailChannel
from channels.failover import FailoverChannel
from channels.wechat_official import WechatOfficialChannel
from notifier.config import Settings
from notifier.domain.errors import ConfigError
from notifier.engine.context import EngineContext
from notifier.store import Store
from tests.databases import database_url

WECHAT = {"kind": "wechat", "type": "wechat_official", "appid": "wx0123456789abcdef", "secret": "s", "template_id": "t"}
CHANNELS: dict[str, Any] = {
    "sms-primary": {"kind": "sms", "type": "outbox", "order": 1},
    "sms-backup": {"kind": "sms", "type": "outbox", "order": 2},
    "sms": {"kind": "sms", "type": "failover", "aliases": ["sms-primary", "sms-backup"]},
    "email": {"kind": "email", "type": "smtp", "from_address": "notices@example.gov.cn"},
    "wechat": WECHAT,
    "wechat-2": {**WECHAT, "template_id": "t2"},
    "bot": {
        "kind": "bot",
        "type": "dingtalk_bot",
        "areas": {"370725001": "http://127.0.0.1:9/robot/send?access_token=x"},
    },
    "bot-slow": {
        "kind": "bot",
        "type": "wecom_bot",
        "rate_per_minute": 5,
        "areas": {"370725001": "http://127.0.0.1:9/cgi-bin/webhook/send?key=k"},
    },
}


def settings_with(channels: dict[str, Any], tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "c.db")},
            "server": {"public_url": "https://notify.example.gov.cn"},
            "channels": channels,
        }
    )


def test_every_adapter_is_prepared_with_what_it_needs(tmp_path: Path) -> None:
    adapters = load_channels(settings_with(CHANNELS, tmp_path))
    failover = adapters["sms"]
    assert isinstance(failover, FailoverChannel)
    assert failover.member_aliases() == ["sms-primary", "sms-backup"]
    email = adapters["email"]
    assert isinstance(email, SmtpEmailChannel) and email.links is not None
    assert email.links.url(7, "email").startswith("https://notify.example.gov.cn/unsubscribe?token=")
    first, second = adapters["wechat"], adapters["wechat-2"]
    assert isinstance(first, WechatOfficialChannel) and isinstance(second, WechatOfficialChannel)
    assert first.tokens is second.tokens  # one access token per account, shared by its aliases


async def test_engine_routes_around_failover_members_and_applies_documented_limits(
    tmp_path: Path, store: Store
) -> None:
    settings = settings_with(CHANNELS, tmp_path)
    context = EngineContext(store, settings, load_channels(settings))
    assert context.aliases_of("sms") == ["sms"]
    assert context.limiters["bot"].wait_time(0.0) == 0.0
    granted = context.limiters["bot"].take(100, 0.0)
    assert granted == 20  # DingTalk's documented 20 messages a minute
    assert context.limiters["bot-slow"].take(100, 0.0) == 5  # the configured limit wins


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (
            {"x": {"kind": "sms", "type": "carrier-pigeon"}},
            "channels.x.type: no channel adapter named 'carrier-pigeon'",
        ),
        ({"x": {"kind": "sms", "type": "outbox", "rooot": "o"}}, "channels.x.rooot: unknown option"),
        ({"x": {"kind": "sms", "type": "failover", "aliases": ["a", "b"]}}, "channels.x.aliases: no channel 'a'"),
        ({"x": {"kind": "sms", "type": "kannel"}}, "channels.x.username"),
    ],
)
def test_bad_channel_config_names_the_key(tmp_path: Path, channels: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_channels(settings_with(channels, tmp_path))
