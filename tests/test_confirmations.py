"""Notices that ask for confirmation, end to end on the outbox channels: the SMS carries the reply wording (and the
preview bills it), the unconfirmed get one reminder on their next channel after the set time (fake clock), a
click on the signed link confirms, and the follow-up PDF lists exactly the residents left (read by pdftotext)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from channels import load_channels
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.engine import Engine
from notifier.engine.confirmations import confirm_by_reply
from notifier.engine.optouts import OptOutReply, apply_opt_out
from notifier.store import Store
from notifier.testing import FakeClock
from tests.conftest import COUNTY, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, Api
from tests.databases import run_sql
from tests.test_bulletin_render import need_fonts

CONFIRM = "回复1确认收到"
BODY = {"topic": "social-assistance", "title": "临时救助金发放通知", "body": "请于12月5日前到村委会领取救助金。",
        "target": {"areas": [COUNTY]}, "channels": ["sms", "wechat", "email"]}


async def resident(store: Store, name: str, phone: str, area: str, channels: list[str], **fields: Any) -> int:
    data = {"name": name, "phone": phone, "area_code": area, "channels": channels, "topics": ["social-assistance"],
            **fields}
    return (await store.create_subscriber(SubscriberIn.model_validate(data), "test")).id


async def issue(api: Api, body: dict[str, Any]) -> int:
    status, notice = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=body)
    assert status == 201, notice
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/submit", key="civ-issuer"))[0] == 200
    return int(notice["id"])


def files(root: Path, alias: str) -> list[str]:
    folder = root / alias
    return sorted(p.read_text(encoding="utf-8") for p in folder.glob("*.txt")) if folder.is_dir() else []


async def test_the_sms_preview_bills_the_confirmation_wording(api: Api, store: Store) -> None:
    await resident(store, "赵一", "+8613900000001", VILLAGE_A1, ["sms"])
    plain = await issue(api, BODY)
    asking = await issue(api, {**BODY, "confirmation": {"remind_after_minutes": 60}})
    charged = {}
    for notice_id in (plain, asking):
        status, preview = await api.call("GET", f"/api/v1/notices/{notice_id}/preview", key="civ-issuer")
        assert status == 200, preview
        charged[notice_id] = preview["sms"]["aliases"][0]["chars"]
    assert charged[asking] - charged[plain] == len(CONFIRM)
    status, notice = await api.call("GET", f"/api/v1/notices/{asking}", key="civ-issuer")
    assert notice["confirmation"] == {"remind_after_minutes": 60}
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer",
                                     json={**BODY, "confirmation": {"remind_after_minutes": 0}})
    assert status == 422 and problem["errors"][0]["loc"] == "confirmation.remind_after_minutes"


async def test_the_unconfirmed_get_one_reminder_and_the_follow_up_pdf_lists_those_left(
    api: Api, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    replied = await resident(store, "赵一", "+8613900000001", VILLAGE_A1, ["sms", "wechat"], wechat_openid="oZHAO1x")
    clicks = await resident(store, "钱二", "+8613900000002", VILLAGE_A1, ["sms", "wechat"], wechat_openid="oQIAN2x")
    silent = await resident(store, "孙三", "+8613900000003", VILLAGE_A2, ["sms", "email"], email="sun@example.com")
    no_other = await resident(store, "李四", "+8613900000004", VILLAGE_B1, ["sms"])
    notice_id = await issue(api, {**BODY, "confirmation": {"remind_after_minutes": 60}})
    assert (await api.call("POST", f"/api/v1/notices/{notice_id}/approve", key="civ-approver"))[0] == 200
    clock = FakeClock()
    engine = Engine(store, settings, load_channels(settings), clock=clock)
    await engine.run_until_idle()
    sms = files(outbox, "sms")
    assert len(sms) == 4 and all(text.rstrip().endswith(CONFIRM) for text in sms)

    assert await confirm_by_reply(store, "+8613900000001", "sms") == "confirmed"
    clock.advance(30 * 60)
    await engine.run_until_idle()
    assert files(outbox, "wechat") == [] and files(outbox, "email") == []  # not yet: 60 minutes were set

    clock.advance(40 * 60)
    await engine.run_until_idle()
    [wechat] = files(outbox, "wechat")
    [email] = files(outbox, "email")
    assert "To: oQIAN2x" in wechat and "To: sun@example.com" in email
    assert "确认收到请点击：" in email
    clock.advance(5 * 3600)
    await engine.run_until_idle()
    assert len(files(outbox, "wechat")) == 1 and len(files(outbox, "email")) == 1  # once only

    link = re.search(r"^Confirm: (\S+)$", wechat, re.MULTILINE)
    assert link is not None
    url = urlsplit(link.group(1))
    async with api.session.get(f"{api.base}{url.path}?{url.query}") as response:
        assert response.status == 200 and "确认收到" in await response.text()
    deliveries = {(d.subscriber_id, d.channel): d.state for d in (await store.list_deliveries(notice_id, None, 50))[0]}
    assert deliveries[(clicks, "wechat")] == "sent"  # a GET never confirms
    async with api.session.post(f"{api.base}{url.path}?{url.query}") as response:
        assert response.status == 200 and "确认成功" in await response.text()
    async with api.session.post(f"{api.base}{url.path}?{url.query}x") as response:
        assert response.status in (400, 403)

    deliveries = {(d.subscriber_id, d.channel): d.state for d in (await store.list_deliveries(notice_id, None, 50))[0]}
    assert deliveries == {
        (replied, "sms"): "confirmed", (clicks, "sms"): "sent", (clicks, "wechat"): "confirmed",
        (silent, "sms"): "sent", (silent, "email"): "sent", (no_other, "sms"): "sent",
    }
    status, page = await api.call("GET", f"/api/v1/notices/{notice_id}/follow-up", key="civ-viewer")
    assert status == 200, page
    assert [(r["subscriber_id"], r["reminder_channel"]) for r in page["items"]] == [
        (silent, "email"), (no_other, "sms")]  # 李四 has one channel: reminded on it
    assert (await api.call("GET", f"/api/v1/notices/{notice_id}/follow-up", key="env-admin"))[0] == 404

    need_fonts()
    headers = {"Authorization": f"Bearer {api.keys['civ-viewer']}", "Accept": "application/pdf"}
    async with api.session.get(f"{api.base}/api/v1/notices/{notice_id}/follow-up", headers=headers) as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        (tmp_path / "follow-up.pdf").write_bytes(await response.read())
    pdftotext = await asyncio.create_subprocess_exec(
        "pdftotext", "-layout", str(tmp_path / "follow-up.pdf"), "-", stdout=asyncio.subprocess.PIPE)
    out, _ = await pdftotext.communicate()
    assert pdftotext.returncode == 0
    text = out.decode("utf-8")
    assert "孙三" in text and "+8613900000003" in text and "李四" in text and "+8613900000004" in text
    assert "赵一" not in text and "钱二" not in text
    assert "昌盛社区居民委员会" in text and "昌明社区居民委员会" in text and "恒盛社区" not in text
    assert "第1页/共2页" in re.sub(r"\s+", "", text)  # a village per page, numbered
    for action, count in (("notice.follow_up", 2), ("delivery.confirmed", 2)):
        status, audit = await api.call("GET", f"/api/v1/audit?action={action}", key="civ-admin")
        assert status == 200 and len(audit["items"]) == count, audit


async def test_a_notice_without_confirmation_has_no_follow_up_list(api: Api, store: Store) -> None:
    await resident(store, "赵一", "+8613900000001", VILLAGE_A1, ["sms"])
    notice_id = await issue(api, BODY)
    status, problem = await api.call("GET", f"/api/v1/notices/{notice_id}/follow-up", key="civ-issuer")
    assert status == 409, problem


async def reminders(store: Store, notice_id: int) -> dict[int, str | None]:
    rows = await run_sql(
        store.db, "SELECT subscriber_id, channel FROM confirmation_reminders WHERE notice_id = ?", (notice_id,)
    )
    return {row["subscriber_id"]: row["channel"] for row in rows}


def outbox_files(outbox: Path) -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in outbox.glob("*/*.txt")}


async def test_a_resident_with_one_channel_gets_the_reminder_once_on_that_channel(
    api: Api, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    sms_only = await resident(store, "李四", "+8613900000004", VILLAGE_B1, ["sms"])
    email_only = await resident(store, "周五", "+8613900000005", VILLAGE_A2, ["email"], email="zhou@example.com")
    refused = await resident(store, "吴六", "+8613900000006", VILLAGE_A1, ["sms"])
    notice_id = await issue(api, {**BODY, "confirmation": {"remind_after_minutes": 60}})
    assert (await api.call("POST", f"/api/v1/notices/{notice_id}/approve", key="civ-approver"))[0] == 200
    clock = FakeClock()
    engine = Engine(store, settings, load_channels(settings), clock=clock)
    await engine.run_until_idle()
    first = outbox_files(outbox)
    assert len(first) == 3 and not any("-r1" in text for text in first.values())
    await apply_opt_out(store, OptOutReply("+8613900000006", "sms", "td", clock()))  # no more SMS for 吴六

    clock.advance(59 * 60)
    await engine.run_until_idle()
    assert await reminders(store, notice_id) == {} and outbox_files(outbox) == first

    clock.advance(2 * 60)
    await engine.run_until_idle()
    assert await reminders(store, notice_id) == {sms_only: "sms", email_only: "email", refused: None}
    again = outbox_files(outbox)
    assert {path: again[path] for path in first} == first  # the first messages' files kept as they were
    new = {path: text for path, text in again.items() if path not in first}
    [sms_file] = [name for name, text in new.items() if "To: +8613900000004" in text]
    [email_file] = [name for name, text in new.items() if "To: zhou@example.com" in text]
    assert len(new) == 2 and sms_file.name.endswith("-r1.txt") and email_file.name.endswith("-r1.txt")
    # the same message again in a file of its own, a new one for the provider: its key says so
    assert f"Idempotency-Key: n{notice_id}-s{sms_only}-sms-r1" in new[sms_file]
    assert new[sms_file].rstrip().endswith(CONFIRM) and BODY["body"] in new[sms_file]
    assert f"Idempotency-Key: n{notice_id}-s{email_only}-email-r1" in new[email_file]
    assert "确认收到请点击：" in new[email_file]

    for path in again:
        path.unlink()
    clock.advance(6 * 3600)
    await engine.run_until_idle()
    assert outbox_files(outbox) == {}  # once only

    assert await confirm_by_reply(store, "+8613900000004", "sms") == "confirmed"
    status, page = await api.call("GET", f"/api/v1/notices/{notice_id}/follow-up", key="civ-viewer")
    assert status == 200, page
    assert [(r["subscriber_id"], r["reminder_channel"]) for r in page["items"]] == [(email_only, "email"),
                                                                                     (refused, None)]
