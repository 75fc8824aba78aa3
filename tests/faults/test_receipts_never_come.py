"""A gateway that accepts every message and never sends a delivery receipt.

With ``engine.confirm_window`` set, a message sent in first-available mode is only done when its receipt
says ``delivered``. The documented rule (``notifier.engine.housekeeping.fall_back_unconfirmed`` and
``outcomes.give_up``): when the window passes without one, the resident is handed to their next channel
(the SMS ends ``fallback``), or, with no next channel, the SMS ends ``failed`` with "not confirmed in
time". A receipt that does come keeps its delivery ``delivered``. The notice is not ``done`` while a sent
message waits for its receipt, so it can still be cancelled.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from channels import load_channels
from notifier.engine import cancel_notice
from notifier.store import Store
from notifier.testing import FakeClock
from tests.engine.conftest import approved, delivery_rows, resident
from tests.fake_gateway import Reply, fake_gateway
from tests.fake_wechat import FakeWechat
from tests.faults.conftest import counts, fault_settings, running, until

WINDOW = 600.0


async def test_silence_after_acceptance_hands_over_to_the_next_channel(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """Three residents get an SMS through a Kannel that accepts all and reports nothing; one of them has
    WeChat too, one has only SMS, and for the third a receipt does arrive. Ten minutes later the issuer
    sees: the silent SMS with a WeChat behind it ``fallback`` and that WeChat ``sent``; the silent SMS with
    nothing behind it ``failed`` ("not confirmed in time"); the confirmed one ``delivered``. The notice
    stays ``sending`` while a message waits for its receipt, and is ``done`` once the WeChat is confirmed;
    nobody is left waiting and only the resident with a next channel gets a second message."""
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as smsbox, FakeWechat() as wechat:
        channels = {
            "sms": {
                "kind": "sms", "type": "kannel", "url": f"{smsbox.url}/cgi-bin/sendsms", "username": "notifier",
                "password": "sendsms-secret", "dlr_url": "http://127.0.0.1:8080/hooks/kannel/dlr",
                "hook_token": "dlr-hook-token-of-the-kannel-alias",
            },
            "wechat": {
                "kind": "wechat", "type": "wechat_official", "appid": wechat.appid, "secret": wechat.secret,
                "template_id": wechat.template_id, "api_base": wechat.url, "callback_token": "wechat-callback-token",
            },
        }
        settings = fault_settings(tmp_path, channels, confirm_window=WINDOW)
        openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
        wechat.followers.add(openid)
        with_wechat = await resident(fault_store, channels=["sms", "wechat"], wechat_openid=openid)
        sms_only = await resident(fault_store)
        confirmed = await resident(fault_store, channels=["sms", "wechat"], wechat_openid="o6_confirmed_by_dlr")
        notice = await approved(fault_store, channels=["sms", "wechat"])
        async with running(fault_store, settings, load_channels(settings), clock) as engine:

            async def all_sent() -> bool:
                return await counts(fault_store, notice) == {"sms": {"sent": 3}}

            await until(all_sent, "three SMS sent")
            by_resident = {row["subscriber_id"]: row for row in await delivery_rows(fault_store, notice.id)}
            receipt = by_resident[confirmed.id]["provider_message_id"]
            assert (await engine.record_receipt("sms", receipt, "delivered")).value == "applied"

            clock.advance(WINDOW + 1)  # the window passes with no word from the gateway about the other two

            async def handed_over() -> bool:
                return await counts(fault_store, notice) == {
                    "sms": {"delivered": 1, "failed": 1, "fallback": 1},
                    "wechat": {"sent": 1},
                }

            await until(handed_over, "the silent SMS handed over or failed after the confirm window")
            assert (await fault_store.get_notice(notice.id)).state == "sending"  # the WeChat awaits its receipt
            [fallback] = [row for row in await delivery_rows(fault_store, notice.id) if row["channel"] == "wechat"]
            assert (await engine.record_receipt("wechat", fallback["provider_message_id"], "delivered")).value == (
                "applied"
            )

            async def done() -> bool:
                return (await fault_store.get_notice(notice.id)).state == "done"

            await until(done, "the notice done once every message is confirmed or given up")

    rows = await delivery_rows(fault_store, notice.id)
    outcome = {(row["subscriber_id"], row["channel"]): (row["state"], row["last_error"]) for row in rows}
    assert outcome == {
        (with_wechat.id, "sms"): ("fallback", "not confirmed in time"),
        (with_wechat.id, "wechat"): ("delivered", None),
        (sms_only.id, "sms"): ("failed", "not confirmed in time"),
        (confirmed.id, "sms"): ("delivered", None),
    }
    assert Counter(seen.query["to"] for seen in smsbox.seen) == {
        p.phone: 1 for p in (with_wechat, sms_only, confirmed)
    }
    assert [body["touser"] for body in wechat.received] == [openid]


async def test_a_notice_waiting_for_receipts_can_still_be_cancelled(
    fault_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """Every SMS is accepted and none confirmed yet; the issuer finds a mistake and cancels. The notice is
    still ``sending`` while its confirm window runs (it used to be ``done`` already, and the cancel was
    refused with 409), the cancel is taken, and when the window passes the resident is not sent the
    cancelled notice again on WeChat: the fallback is ``skipped``."""
    async with fake_gateway(Reply(202, "0: Accepted for delivery")) as smsbox, FakeWechat() as wechat:
        channels = {
            "sms": {
                "kind": "sms", "type": "kannel", "url": f"{smsbox.url}/cgi-bin/sendsms", "username": "notifier",
                "password": "sendsms-secret", "dlr_url": "http://127.0.0.1:8080/hooks/kannel/dlr",
                "hook_token": "dlr-hook-token-of-the-kannel-alias",
            },
            "wechat": {
                "kind": "wechat", "type": "wechat_official", "appid": wechat.appid, "secret": wechat.secret,
                "template_id": wechat.template_id, "api_base": wechat.url, "callback_token": "wechat-callback-token",
            },
        }
        settings = fault_settings(tmp_path, channels, confirm_window=WINDOW)
        openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
        wechat.followers.add(openid)
        person = await resident(fault_store, channels=["sms", "wechat"], wechat_openid=openid)
        notice = await approved(fault_store, channels=["sms", "wechat"], target={"subscribers": [person.id]})
        bystander = await resident(fault_store)
        async with running(fault_store, settings, load_channels(settings), clock):

            async def sent() -> bool:
                return await counts(fault_store, notice) == {"sms": {"sent": 1}}

            await until(sent, "the SMS sent")
            # another notice, one that waits for no receipt, finished after that send: the same statement
            # that finishes it has looked at the first one too
            other = await approved(fault_store, target={"subscribers": [bystander.id]}, channel_mode="all")

            async def other_done() -> bool:
                return (await fault_store.get_notice(other.id)).state == "done"

            await until(other_done, "the other notice done")
            assert (await fault_store.get_notice(notice.id)).state == "sending"
            await cancel_notice(fault_store, notice.id, "test")

            clock.advance(WINDOW + 1)

            async def window_over() -> bool:
                return await counts(fault_store, notice) == {"sms": {"fallback": 1}, "wechat": {"skipped": 1}}

            await until(window_over, "the confirm window over, the fallback skipped")

    assert (await fault_store.get_notice(notice.id)).state == "cancelled"
    assert wechat.received == []
    assert [seen.query["to"] for seen in smsbox.seen] == [person.phone, bystander.phone]
