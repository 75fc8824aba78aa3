"""The residents' flow (notifier.residents.flow) without the web: a real migrated store, a fake clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from notifier.domain.models import SubscriberIn
from notifier.residents import flow
from notifier.residents.flow import Ask, Asked, Channel, Check, Limited, MeLinkError, MySettings, NoChannel, Outside
from notifier.store import Store
from notifier.testing import FakeClock
from tests.conftest import VILLAGE_A1, seed_catalog
from tests.databases import database_url, open_migrated

SECRET = SecretStr("flow-test-secret")
PHONE = "+8613800138000"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = await open_migrated(database_url(tmp_path, "flow.db"))
    store = Store(db)
    await seed_catalog(store)
    try:
        yield store
    finally:
        await db.close()


def outside(store: Store, clock: FakeClock, aliases: dict[str, str] | None = None) -> Outside:
    known = {"sms": "sms-main", "email": "mail"} if aliases is None else aliases
    return Outside(store, SECRET, "https://notify.example.test", clock(), known.get)


def subscribe_ask(address: str = PHONE, ip: str = "192.0.2.1") -> Ask:
    return Ask("subscribe", Channel.SMS, address, ip, "李明", VILLAGE_A1, ["air-quality"])


async def sent_code(store: Store) -> str:
    rows = await store.db.fetch_all("direct_messages_of_request", {"request_id": 1})
    return re.findall(r"[0-9]{6}", rows[-1]["text"])[0]


async def test_a_code_is_queued_on_the_first_alias_and_only_its_hash_is_kept(store: Store) -> None:
    clock = FakeClock()
    woken = []
    out = Outside(store, SECRET, "https://x.test", clock(), {"sms": "sms-main"}.get, lambda: woken.append(1))
    asked = await flow.request_code(out, subscribe_ask())
    assert isinstance(asked, Asked) and asked.sent and woken == [1]
    [message] = await store.direct_messages_of_request(asked.request_id)
    assert (message["alias"], message["address"], message["state"]) == ("sms-main", PHONE, "queued")
    assert message["deadline"] == pytest.approx(clock() + flow.CODE_TTL)
    code = re.findall(r"[0-9]{6}", message["text"])[0]
    request = await store.get_subscription_request(asked.request_id)
    assert request is not None and code not in request["code_hash"]
    assert request["code_hash"] == flow.code_hash(SECRET, PHONE, code)


async def test_no_alias_of_the_kind_means_no_channel(store: Store) -> None:
    outcome = await flow.request_code(outside(store, FakeClock(), {}), subscribe_ask())
    assert outcome == NoChannel(Channel.SMS)
    assert not await store.db.fetch_all("get_subscription_request", {"id": 1})


async def test_limits_per_address_and_per_network(store: Store) -> None:
    clock = FakeClock()
    assert isinstance(await flow.request_code(outside(store, clock), subscribe_ask()), Asked)
    assert await flow.request_code(outside(store, clock), subscribe_ask()) == Limited("minute", 60)
    for n in range(4):
        clock.advance(61)
        assert isinstance(await flow.request_code(outside(store, clock), subscribe_ask()), Asked), n
    clock.advance(61)
    assert await flow.request_code(outside(store, clock), subscribe_ask()) == Limited("day", 86400)
    for n in range(15):
        assert isinstance(await flow.request_code(outside(store, clock), subscribe_ask(f"+861390000{n:04d}")), Asked)
    assert await flow.request_code(outside(store, clock), subscribe_ask("+8613900009999")) == Limited("network", 3600)
    assert isinstance(await flow.request_code(outside(store, clock), subscribe_ask("+8613900009999", "192.0.2.2")),
                      Asked)  # fmt: skip


async def test_an_email_address_and_its_plus_variants_share_the_limits(store: Store) -> None:
    """``li.ming+1@`` and ``li.ming+2@`` reach one mailbox at most providers: were they counted apart, anyone could
    fill a stranger's inbox with the county's links, one variant a request."""
    clock = FakeClock()

    def ask(address: str, ip: str) -> Ask:
        return Ask("subscribe", Channel.EMAIL, flow.address_of(Channel.EMAIL, address), ip, "李明", VILLAGE_A1,
                   ["air-quality"])  # fmt: skip

    assert isinstance(await flow.request_code(outside(store, clock), ask("Li.Ming+1@Example.org", "192.0.2.1")), Asked)
    for variant in ("li.ming+2@example.org", "li.ming@example.org", "li.ming+1+x@example.org"):
        assert await flow.request_code(outside(store, clock), ask(variant, "192.0.2.9")) == Limited("minute", 60)
    for other in ("li.ming2@example.org", "li.ming@example.net", "li%ming@example.org", "+li@example.org"):
        assert isinstance(await flow.request_code(outside(store, clock), ask(other, "192.0.2.9")), Asked), other
    for n in range(4):
        clock.advance(61)
        assert isinstance(await flow.request_code(outside(store, clock), ask(f"li.ming+{n}@example.org", "192.0.2.1")),
                          Asked), n  # fmt: skip
    clock.advance(61)
    assert await flow.request_code(outside(store, clock), ask("li.ming+new@example.org", "192.0.2.3")) == Limited(
        "day", 86400
    )


async def test_check_code_outcomes(store: Store) -> None:
    clock = FakeClock()
    asked = await flow.request_code(outside(store, clock), subscribe_ask())
    assert isinstance(asked, Asked)
    code = await sent_code(store)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    out = outside(store, clock)
    assert (await flow.check_code(out, "forged.token", code, "subscribe")).outcome is Check.UNKNOWN
    assert (await flow.check_code(out, asked.request_token, code, "me")).outcome is Check.UNKNOWN  # other purpose
    assert (await flow.check_code(out, asked.request_token, "12a", "subscribe")).outcome is Check.MALFORMED
    checked = await flow.check_code(out, asked.request_token, wrong, "subscribe")
    assert (checked.outcome, checked.attempts_left) == (Check.WRONG, 4)
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    right = await flow.check_code(out, asked.request_token, full_width, "subscribe")
    assert right.outcome is Check.RIGHT and right.request is not None
    subscriber = await flow.subscribe(store, right.request, clock())
    assert subscriber is not None and subscriber.phone == PHONE and subscriber.channels == ["sms"]
    assert (await flow.check_code(out, asked.request_token, code, "subscribe")).outcome is Check.DONE
    clock.advance(flow.CODE_TTL + 1)
    asked_again = await flow.request_code(outside(store, clock), subscribe_ask())
    assert isinstance(asked_again, Asked)
    clock.advance(flow.CODE_TTL + 1)
    late = await flow.check_code(outside(store, clock), asked_again.request_token, code, "subscribe")
    assert late.outcome is Check.EXPIRED


async def test_me_to_an_unknown_address_sends_nothing_and_no_code_is_right(store: Store) -> None:
    clock = FakeClock()
    asked = await flow.request_code(outside(store, clock), Ask("me", Channel.SMS, PHONE, "192.0.2.1"))
    assert isinstance(asked, Asked) and not asked.sent
    assert not await store.direct_messages_of_request(asked.request_id)
    for guess in ("000000", "123456"):
        checked = await flow.check_code(outside(store, clock), asked.request_token, guess, "me")
        assert checked.outcome is Check.WRONG


async def test_me_tokens(store: Store) -> None:
    token = flow.me_token(SECRET, 7, 1000.0)
    assert flow.read_me_token(token, SECRET, 1000.0) == 7
    with pytest.raises(MeLinkError) as expired:
        flow.read_me_token(token, SECRET, 1000.0 + flow.ME_TTL + 1)
    assert expired.value.expired
    with pytest.raises(MeLinkError) as forged:
        flow.read_me_token(token, SecretStr("another-secret"), 1000.0)
    assert not forged.value.expired
    unsubscribe_like = flow.sign({"p": "unsub", "s": 7}, SECRET, 60, now=1000.0)
    with pytest.raises(MeLinkError):
        flow.read_me_token(unsubscribe_like, SECRET, 1000.0)  # another purpose's token never opens /me


async def test_settings_errors_and_update(store: Store) -> None:
    data = SubscriberIn.model_validate({"name": "李明", "phone": PHONE, "email": "li@example.org",
                                        "area_code": VILLAGE_A1, "channels": ["sms"], "topics": ["air-quality"]})
    resident = await store.create_subscriber(data, "test")
    known = {"air-quality", "social-assistance"}
    good = MySettings(["social-assistance"], ["email", "sms"], "22:00", "06:30", "en")
    assert flow.settings_errors(good, resident, known) == []
    bad = MySettings(["nope"], ["wechat"], "22:00", "", "fr")
    assert flow.settings_errors(bad, resident, known) == [("topics", "unknown"), ("channels", "unknown"),
                                                         ("quiet_hours", "both"), ("language", "unknown")]
    assert flow.settings_errors(MySettings([], [], "", ""), resident, known) == [("channels", "empty")]
    await store.add_optout(resident.id, "channel", "email", "test")
    after = await flow.update_settings(store, resident.id, good)
    assert (after.topics, after.channels, after.language) == (["social-assistance"], ["email", "sms"], "en")
    assert after.opt_out_channels == []  # e-mail chosen again: its opt-out lifted
    await flow.leave(store, resident.id)
    assert await store.find_subscriber_by_phone(PHONE) is None
