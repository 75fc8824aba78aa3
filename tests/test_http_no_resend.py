"""No HTTP adapter sends a message twice without a trace.

aiohttp's client resends a request of an idempotent method (GET, PUT...) once, on a new connection and
without telling the caller, when a kept-alive connection drops before the reply (``ServerDisconnectedError``
or ``ClientOSError`` from an open connection). A gateway that took the message before the connection dropped
then sends it twice (Kannel's sendsms is a GET). ``channels.http`` turns such a drop into
``Retry(OUTCOME_UNKNOWN)``: the engine records the try and its reason and decides what follows.

The peer (``tests.fake_gateway.dropping_peer``) is a real HTTP/1.1 server on 127.0.0.1: it answers the first
request of each connection and keeps the connection open, and closes it without a word on the second request
it reads there. Every request it reads is counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels.base import OutboundMessage, Retry, SendResult, Sent
from channels.generic_http import GenericHttpChannel, GenericHttpOptions
from channels.http import OUTCOME_UNKNOWN, HttpChannel, HttpOptions
from channels.kannel import KannelChannel, KannelOptions
from tests.fake_gateway import dropping_peer


def message(delivery_id: int) -> OutboundMessage:
    return OutboundMessage(delivery_id, 7, "sms", "gw", "+8613800138000", "明天停水。", f"n7-s{delivery_id}-sms")


async def two_sends(channel: HttpChannel) -> list[SendResult]:
    """Two messages one after the other through one session: the second goes on the kept-alive connection."""
    await channel.open()
    try:
        return [(await channel.send([message(delivery_id)]))[0] for delivery_id in (1, 2)]
    finally:
        await channel.close()


async def test_kannel_sends_nothing_twice_when_the_kept_alive_connection_drops() -> None:
    async with dropping_peer() as peer:
        options = KannelOptions.model_validate(
            {"url": f"{peer.url}/cgi-bin/sendsms", "username": "u", "password": "pw-secret", "timeout": 2}
        )
        results = await two_sends(KannelChannel("gw", options))
    assert [request.split("?")[0] for request in peer.requests] == ["GET /cgi-bin/sendsms"] * 2
    assert results == [Sent("d1"), Retry(OUTCOME_UNKNOWN)]
    assert peer.connections == 1  # no second connection was opened to send the message again


@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
async def test_a_generic_gateway_gets_each_message_once_whatever_the_method(method: str) -> None:
    async with dropping_peer() as peer:
        options: dict[str, Any] = {
            "method": method,
            "url": f"{peer.url}/send",
            "body_template": '{"to": {{ to|tojson }}, "text": {{ text|tojson }}}' if method != "GET" else None,
            "query": {"to": "{{ to }}", "text": "{{ text }}"} if method == "GET" else {},
            "timeout": 2,
        }
        results = await two_sends(GenericHttpChannel("gw", GenericHttpOptions.model_validate(options)))
    assert len(peer.requests) == 2, peer.requests
    assert results == [Sent("d1"), Retry(OUTCOME_UNKNOWN)]


class Plain(HttpChannel):
    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        raise NotImplementedError


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"])
async def test_the_shared_layer_never_resends_a_request_of_any_method(method: str) -> None:
    """Every method aiohttp counts idempotent (``aiohttp.client.IDEMPOTENT_METHODS``) and two it does not. This
    fails if an aiohttp upgrade resends by another path than the one ``channels.http`` closes."""
    channel = Plain("plain", HttpOptions(timeout=2))
    async with dropping_peer() as peer:
        await channel.open()
        try:
            first = await channel.request(method, f"{peer.url}/one")
            second = await channel.request(method, f"{peer.url}/two")
        finally:
            await channel.close()
    assert peer.requests == [f"{method} /one", f"{method} /two"]
    assert not isinstance(first, Retry) and first.status == 202
    assert second == Retry(OUTCOME_UNKNOWN)


async def test_a_refused_connection_is_still_a_plain_connection_error() -> None:
    """Nothing was sent when the connection could not be opened: not an unknown outcome."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    channel = Plain("plain", HttpOptions(timeout=2))
    await channel.open()
    try:
        result = await channel.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        await channel.close()
    assert isinstance(result, Retry) and result.reason.startswith("connection error: ClientConnectorError")
