"""Each vendor's own way of saying "slow down", through its real adapter against its fake platform.

Aliyun ``isv.BUSINESS_LIMIT_CONTROL`` and Tencent ``LimitExceeded.PhoneNumberThirtySecondLimit`` throttle one
number; WeChat answers 45009 when the account's daily quota is spent and -1 when busy; WeCom 45033 (too
many calls at once) and 45009 (frequency). The fakes answer as the vendors document
(/work/shared/reference/channel-apis.md has the sources); once the vendor's window has passed the fake
stops throttling, the test moves the engine's clock past the wait the adapter asked for, and the running
engine sends the rest by itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from channels import load_channels
from notifier.domain.models import Notice
from notifier.store import Store
from notifier.testing import FakeClock
from tests.databases import database_url, read_rows
from tests.engine.conftest import approved, delivery_rows, resident
from tests.fake_aliyun import FakeAliyun
from tests.fake_tencent import FakeTencent
from tests.fake_wechat import FakeWechat
from tests.fake_wecom import FakeWecom
from tests.faults.conftest import counts, deliveries_by_state, fault_settings, running, until

SIGN = "昌乐县政府"


async def waits(tmp_path: Path, notice: Notice) -> list[float]:
    """``due_at`` of the notice's queued deliveries, read from the database by a connection of its own."""
    query = "SELECT due_at FROM deliveries WHERE state = 'queued' AND notice_id = ?"
    return [row[0] for row in await read_rows(database_url(tmp_path, "faults.db"), query, notice.id)]


async def wait_for_queued(store: Store, notice: Notice, expected: int, kind: str, sent: int) -> None:
    async def throttled() -> bool:
        state = (await counts(store, notice)).get(kind, {})
        return state.get("queued", 0) == expected and state.get("sent", 0) == sent and "sending" not in state

    await until(throttled, f"{sent} {kind} sent and {expected} queued again by the throttle")


async def wait_for_all_sent(store: Store, notice: Notice, kind: str, expected: int) -> None:
    async def all_sent() -> bool:
        return await counts(store, notice) == {kind: {"sent": expected}}

    await until(all_sent, f"every {kind} message sent once the throttle lifted")


async def test_aliyun_business_limit_control_holds_back_one_number_for_a_minute(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """Aliyun throttles one number (``isv.BUSINESS_LIMIT_CONTROL`` "触发分钟级流控Permits:1"): the issuer sees
    three SMS ``sent`` and one ``queued`` with ``rate-limited``, due a minute later; the other residents are
    not held up. After the minute that resident gets the SMS; everybody gets exactly one."""
    async with FakeAliyun() as fake:
        settings = fault_settings(
            tmp_path,
            {
                "sms": {
                    "kind": "sms", "type": "aliyun_sms", "access_key_id": "LTAI-test-id",
                    "access_key_secret": "test-secret", "sign_name": SIGN, "template_code": "SMS_100000001",
                    "endpoint": fake.url,
                }
            },
        )
        people = [await resident(fault_store) for _ in range(4)]
        throttled = (people[2].phone or "").removeprefix("+86")
        fake.throttled[throttled] = "触发分钟级流控Permits:1"
        notice = await approved(fault_store)
        async with running(fault_store, settings, load_channels(settings), clock):
            started = clock.now
            await wait_for_queued(fault_store, notice, 1, "sms", 3)
            [row] = await deliveries_by_state(fault_store, notice, "queued")
            assert row["last_error"] == "rate-limited"
            assert await waits(tmp_path, notice) == [started + 60]

            del fake.throttled[throttled]  # the vendor's minute is over
            clock.advance(60)
            await wait_for_all_sent(fault_store, notice, "sms", 4)

    assert Counter(a.phone for a in fake.accepted) == {(p.phone or "").removeprefix("+86"): 1 for p in people}
    assert [r["PhoneNumbers"] for r in fake.requests].count(throttled) == 2  # refused once, then accepted


async def test_tencent_thirty_second_limit_holds_back_one_number(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """Tencent answers one number of a SendSms call with ``LimitExceeded.PhoneNumberThirtySecondLimit``: the
    issuer sees the others ``sent`` and that one ``queued`` (``rate-limited``) for 30 s; then it goes out.
    One message per resident."""
    async with FakeTencent() as fake:
        settings = fault_settings(
            tmp_path,
            {
                "sms": {
                    "kind": "sms", "type": "tencent_sms", "secret_id": "AKID-test", "secret_key": "tc3-test-key",
                    "sdk_app_id": "1400006666", "sign_name": SIGN, "template_id": "449739", "endpoint": fake.url,
                }
            },
        )
        people = [await resident(fault_store) for _ in range(4)]
        fake.number_codes[people[1].phone or ""] = "LimitExceeded.PhoneNumberThirtySecondLimit"
        notice = await approved(fault_store)
        async with running(fault_store, settings, load_channels(settings), clock):
            started = clock.now
            await wait_for_queued(fault_store, notice, 1, "sms", 3)
            [row] = await deliveries_by_state(fault_store, notice, "queued")
            assert row["last_error"] == "rate-limited"
            assert await waits(tmp_path, notice) == [started + 30]

            fake.number_codes.clear()
            clock.advance(30)
            await wait_for_all_sent(fault_store, notice, "sms", 4)

    assert Counter(a.phone for a in fake.accepted) == {p.phone: 1 for p in people}


def wechat_channels(fake: FakeWechat) -> dict[str, dict[str, Any]]:
    return {
        "wechat": {
            "kind": "wechat", "type": "wechat_official", "appid": fake.appid, "secret": fake.secret,
            "template_id": fake.template_id, "api_base": fake.url,
        }
    }


async def wechat_residents(store: Store, count: int) -> list[str]:
    openids = [f"o6_bmjrPTlm6_2sgVt7hMZOPfL{n:02d}" for n in range(count)]
    for openid in openids:
        await resident(store, wechat_openid=openid, channels=["wechat"])
    return openids


async def test_wechat_daily_quota_defers_the_rest_to_the_next_day(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """The account's daily template-message quota runs out after two messages (errcode 45009): the issuer
    sees two WeChat messages ``sent`` and the rest ``queued`` with "daily template-message quota reached",
    due after midnight (Asia/Shanghai) when the quota resets, with no call to WeChat before then. The next
    day the others get theirs; each follower one message."""
    async with FakeWechat(daily_quota=2) as fake:
        settings = fault_settings(tmp_path, wechat_channels(fake))
        openids = await wechat_residents(fault_store, 5)
        fake.followers.update(openids)
        notice = await approved(fault_store, channels=["wechat"])
        async with running(fault_store, settings, load_channels(settings), clock):
            started = clock.now
            await wait_for_queued(fault_store, notice, 3, "wechat", 2)
            queued = await deliveries_by_state(fault_store, notice, "queued")
            assert {row["last_error"] for row in queued} == {"daily template-message quota reached"}
            due = set(await waits(tmp_path, notice))
            assert len(due) == 1 and started < due.pop() <= started + 86400
            calls_while_over_quota = fake.send_calls

            fake.daily_quota = None  # midnight: the quota is reset
            clock.advance(86400)
            await wait_for_all_sent(fault_store, notice, "wechat", 5)

    assert calls_while_over_quota == 3  # two accepted and the one refused: the rest waited without a call
    assert Counter(body["touser"] for body in fake.received) == dict.fromkeys(openids, 1)


@pytest.mark.parametrize(
    ("kind", "code", "reason", "wait"),
    [
        ("wechat", -1, "errcode -1", None),
        ("wecom", -1, "errcode -1", None),
        ("wecom", 45033, "errcode 45033", None),
        ("wecom", 45009, "api frequency limit reached (errcode 45009)", 60.0),
    ],
)
async def test_busy_or_frequency_limited_platform_is_asked_again_later(
    kind: str, code: int, reason: str, wait: float | None, fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """WeChat or WeCom answers one call with a "try later" errcode (-1 system busy, 45033 too many calls at
    once, 45009 frequency limit). The issuer sees those messages ``queued`` with the errcode as their last
    error, due after the backoff (or the 60 s WeCom asks for on 45009); then ``sent``. Every recipient
    receives the message exactly once."""
    fake: FakeWechat | FakeWecom
    async with FakeWechat() if kind == "wechat" else FakeWecom() as fake:
        fake.scripted.append(code)
        if isinstance(fake, FakeWechat):
            settings = fault_settings(tmp_path, wechat_channels(fake))
            recipients = await wechat_residents(fault_store, 3)
            fake.followers.update(recipients)
        else:
            channel = {
                "kind": "wecom", "type": "wecom_app", "corpid": fake.corpid, "corpsecret": fake.corpsecret,
                "agentid": fake.agentid, "api_base": fake.url,
            }
            settings = fault_settings(tmp_path, {"wecom": channel})
            recipients = [f"zhangwei{n}" for n in range(3)]
            fake.users.update(recipients)
            for userid in recipients:
                await resident(fault_store, wecom_userid=userid, channels=["wecom"])
        notice = await approved(fault_store, channels=[kind])
        async with running(fault_store, settings, load_channels(settings), clock):
            started = clock.now

            async def refused_call_requeued() -> bool:
                rows = await delivery_rows(fault_store, notice.id)
                return bool(rows) and not any(r["state"] == "sending" for r in rows) and any(
                    r["state"] == "queued" and r["attempts"] == 1 for r in rows
                )

            await until(refused_call_requeued, f"the messages of the refused call queued again after {code}")
            queued = await deliveries_by_state(fault_store, notice, "queued")
            assert all(reason in row["last_error"] for row in queued)
            due = await waits(tmp_path, notice)
            if wait is not None:
                assert set(due) == {started + wait}
            else:
                assert all(started < at <= started + settings.engine.backoff_max for at in due)

            clock.advance(settings.engine.backoff_max)
            await wait_for_all_sent(fault_store, notice, kind, len(recipients))

    if isinstance(fake, FakeWechat):
        assert Counter(body["touser"] for body in fake.received) == dict.fromkeys(recipients, 1)
    else:
        assert {user: len(texts) for user, texts in fake.delivered.items()} == dict.fromkeys(recipients, 1)
