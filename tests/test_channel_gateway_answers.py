"""What the adapters make of answers a real gateway, or a broken proxy in front of it, can send.

A message is counted ``Sent`` (the resident counted as reached) only on an answer that says the provider took it;
an unreadable answer from a provider that may have taken the message is ``Retry``; nothing a gateway answers
makes an exception escape ``send``, hammers a token endpoint or keeps a token for ever.
"""

from __future__ import annotations

import pytest

from channels.base import Channel, OutboundMessage, Retry, SendResult, Sent
from channels.kannel import KannelChannel, KannelOptions
from tests.fake_gateway import Reply, fake_gateway

PHONE = "+8613800138000"
HTML_ERROR = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


def message(recipient: str = PHONE, delivery_id: int = 42, text: str = "明起三天减少户外活动。") -> OutboundMessage:
    return OutboundMessage(delivery_id, 7, "sms", "gw", recipient, text, f"n7-s{delivery_id}-x")


async def send(channel: Channel, batch: list[OutboundMessage]) -> list[SendResult]:
    await channel.open()
    try:
        return await channel.send(batch)
    finally:
        await channel.close()


def kannel(url: str) -> KannelChannel:
    options = {"url": f"{url}/cgi-bin/sendsms", "username": "u", "password": "pw-secret", "timeout": 2}
    return KannelChannel("kannel", KannelOptions.model_validate(options))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, HTML_ERROR),  # a proxy's error page with a success status
        Reply(200, ""),  # an empty body
        Reply(202, "Error: something unexpected"),
        Reply(200, '{"status": "ok"}'),  # not Kannel at all
    ],
)
async def test_kannel_success_status_with_an_unknown_body_is_not_counted_sent(reply: Reply) -> None:
    async with fake_gateway(reply) as gateway:
        [result] = await send(kannel(gateway.url), [message()])
    assert isinstance(result, Retry)
    assert "may have taken" in result.reason


@pytest.mark.parametrize("body", ["0: Accepted for delivery", "3: Queued for later delivery", "Sent."])
async def test_kannel_answers_that_say_it_took_the_message_are_sent(body: str) -> None:
    async with fake_gateway(Reply(202, body)) as gateway:
        [result] = await send(kannel(gateway.url), [message()])
    assert result == Sent("d42")
