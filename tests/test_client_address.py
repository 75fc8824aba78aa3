"""Per-address limits behind a reverse proxy: the client is the right-most X-Forwarded-For hop that is not a
trusted proxy, and the header is ignored unless the TCP peer is one of ``[server] trusted_proxies``."""

from __future__ import annotations

import ipaddress
from unittest import mock

import aiohttp
from aiohttp.test_utils import make_mocked_request

from notifier.config import Settings
from notifier.store import Store
from notifier.testing import FakeClock
from notifier.web.client_address import client_address, limit_key
from tests.conftest import Api
from tests.test_feedback import browser, form, post_form, sent_notice  # noqa: F401 - browser is a fixture

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:1::/48")]


def request_from(peer: str, *forwarded: str) -> aiohttp.web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 443) if name == "peername" else default
    headers = [("X-Forwarded-For", value) for value in forwarded]
    from multidict import CIMultiDict

    return make_mocked_request("GET", "/", headers=CIMultiDict(headers), transport=transport)


def test_an_untrusted_peer_is_taken_at_its_address_whatever_it_claims() -> None:
    assert client_address(request_from("203.0.113.9", "198.51.100.7"), PROXIES) == "203.0.113.9"
    assert client_address(request_from("203.0.113.9", "198.51.100.7"), []) == "203.0.113.9"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() -> None:
    assert client_address(request_from("10.0.0.2", "198.51.100.7"), PROXIES) == "198.51.100.7"
    # the client wrote the left-most hop itself; the proxies appended the rest
    spoofed = request_from("10.0.0.2", "1.1.1.1, 198.51.100.7, 10.0.0.3")
    assert client_address(spoofed, PROXIES) == "198.51.100.7"
    # two headers count as one list, in order
    assert client_address(request_from("10.0.0.2", "1.1.1.1", "198.51.100.8"), PROXIES) == "198.51.100.8"
    assert client_address(request_from("2001:db8:1::5", "[2001:db8:9::7]:5123"), PROXIES) == "2001:db8:9::7"
    assert client_address(request_from("10.0.0.2", "198.51.100.9:4431"), PROXIES) == "198.51.100.9"


def test_a_hop_no_proxy_would_write_stops_the_walk_at_the_proxy() -> None:
    assert client_address(request_from("10.0.0.2", "198.51.100.7, not-an-address"), PROXIES) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2"), PROXIES) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2", "10.0.0.3"), PROXIES) == "10.0.0.2"


def test_the_setting_takes_addresses_and_networks_and_refuses_nonsense() -> None:
    settings = Settings.model_validate({"server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}})
    assert [str(n) for n in settings.server.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    for bad in (["10.0.0.1/8"], ["proxy.example"], "10.0.0.1"):
        try:
            Settings.model_validate({"server": {"trusted_proxies": bad}})
        except ValueError as exc:
            assert "trusted_proxies" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_an_ipv4_client_of_a_dual_stack_socket_is_counted_by_its_own_address() -> None:
    # a server listening on "::" sees IPv4 clients as ::ffff:a.b.c.d; taken by their /64 (::/64) every IPv4
    # client would share one limit, and one of them guessing passwords would lock all the others out
    assert limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert limit_key("::ffff:198.51.100.7") != limit_key("::ffff:198.51.100.8")
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert limit_key("198.51.100.7") == "198.51.100.7" and limit_key("unknown") == "unknown"


async def test_the_feedback_form_counts_each_client_behind_the_proxy_separately(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings  # noqa: F811
) -> None:
    settings.server.trusted_proxies = [ipaddress.ip_network("127.0.0.1/32")]
    notice_id, _, _ = await sent_notice(api, store, settings, FakeClock())
    fields = {"category": "opinion", "text": "建议在村委会门口张贴名单。"}
    first, second = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}
    token = await form(api, browser, notice_id, **first)
    taken = [(await post_form(api, browser, notice_id, {**fields, "form_token": token}, **first))[0]
             for _ in range(settings.feedback.form_per_hour + 1)]
    assert taken == [200] * settings.feedback.form_per_hour + [429]
    assert (await post_form(api, browser, notice_id, {**fields, "form_token": token}, **second))[0] == 200


async def test_an_ipv6_client_is_counted_by_its_network_not_by_each_address_it_picks(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings  # noqa: F811
) -> None:
    """A phone or home router holds a /64 and chooses the last 64 bits itself (privacy addresses change daily):
    a new address per form must not buy a new hour's worth of forms."""
    settings.server.trusted_proxies = [ipaddress.ip_network("127.0.0.1/32")]
    notice_id, _, _ = await sent_notice(api, store, settings, FakeClock())
    fields = {"category": "opinion", "text": "建议在村委会门口张贴名单。"}
    token = await form(api, browser, notice_id, **{"X-Forwarded-For": "2001:db8:5:6::1"})
    taken = [(await post_form(api, browser, notice_id, {**fields, "form_token": token},
                              **{"X-Forwarded-For": f"2001:db8:5:6:{n:x}::{n + 1:x}"}))[0]
             for n in range(settings.feedback.form_per_hour + 1)]  # fmt: skip
    assert taken == [200] * settings.feedback.form_per_hour + [429]
    neighbour = {"X-Forwarded-For": "2001:db8:5:7::1"}  # the next /64: another subscriber
    assert (await post_form(api, browser, notice_id, {**fields, "form_token": token}, **neighbour))[0] == 200


async def test_without_trusted_proxies_a_forged_header_does_not_buy_more_forms(
    api: Api, browser: aiohttp.ClientSession, store: Store, settings: Settings  # noqa: F811
) -> None:
    notice_id, _, _ = await sent_notice(api, store, settings, FakeClock())
    fields = {"category": "opinion", "text": "建议在村委会门口张贴名单。"}
    token = await form(api, browser, notice_id)
    for n in range(settings.feedback.form_per_hour):
        forged = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
        assert (await post_form(api, browser, notice_id, {**fields, "form_token": token}, **forged))[0] == 200
    forged = {"X-Forwarded-For": "198.51.100.200"}
    assert (await post_form(api, browser, notice_id, {**fields, "form_token": token}, **forged))[0] == 429
