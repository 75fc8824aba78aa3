"""Residents' SMS replies through Aliyun (SmsUp) and Tencent Cloud (reply callback), end to end on the fake
platforms: the notice goes out through the real adapter to the fake's SendSms, the fake pushes the resident's
reply to our hook exactly as the platform documents it (tests/fake_aliyun.py, tests/fake_tencent.py cite the
pages), and the reply takes the way of a Kannel MO: ``1`` confirms, ``TD`` opts out, other text becomes a
feedback item whose answer goes back through the same platform. Each test runs for both platforms."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels import load_channels
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import NoticeIn, SubscriberIn
from notifier.engine import Engine
from notifier.store import Store
from tests.conftest import VILLAGE_A1, VILLAGE_A2
from tests.fake_aliyun import FakeAliyun
from tests.fake_tencent import FakeTencent

ASKER, ASKER_TOO, OTHER, QUITTER = "+8613900139001", "+8613900139005", "+8613900139002", "+8613900139003"
TOKEN = "cloud-replies-8d1f0e2a"
QUESTION = "我家的低保金什么时候发放？"


@dataclass
class Platform:
    name: str
    alias: str
    path: str
    fake: Any
    answer: dict[str, Any]

    def push_of(self, phone: str, text: str) -> Any:
        """The platform's documented push for one reply."""
        return [self.fake.sms_up(phone, text)] if self.name == "aliyun" else self.fake.reply(phone, text)

    def sent_texts(self, phone: str) -> list[str]:
        if self.name == "aliyun":  # the fake keeps national numbers, as Aliyun's own records show them
            national = phone.removeprefix("+86")
            return [json.loads(a.params["TemplateParam"])["content"] for a in self.fake.accepted if a.phone == national]
        return [a.body["TemplateParamSet"][0] for a in self.fake.accepted if a.phone == phone]


def channel_options(name: str, url: str) -> dict[str, Any]:
    common = {"kind": "sms", "sign_name": "昌乐县政府", "hook_token": TOKEN, "endpoint": url,
              "confirm_text": "回复1确认收到"}
    if name == "aliyun":
        return {**common, "type": "aliyun_sms", "access_key_id": "LTAI-test-id", "access_key_secret": "test-secret",
                "template_code": "SMS_100000001"}
    return {**common, "type": "tencent_sms", "secret_id": "AKID-test", "secret_key": "tc3-test-key",
            "sdk_app_id": "1400006666", "template_id": "449739"}


@dataclass
class Setup:
    base: str
    store: Store
    settings: Settings
    platform: Platform
    session: aiohttp.ClientSession

    def hook_url(self, token: str = TOKEN) -> str:
        return f"{self.base}{self.platform.path}?alias={self.platform.alias}&token={token}"

    async def push(self, phone: str, text: str, token: str = TOKEN) -> tuple[int, Any]:
        return await self.platform.fake.push(self.hook_url(token), self.platform.push_of(phone, text))

    async def send(self) -> None:
        channels = load_channels(self.settings)
        for channel in channels.values():
            await channel.open()
        try:
            await Engine(self.store, self.settings, channels).run_until_idle()
        finally:
            for channel in channels.values():
                await channel.close()

    async def states(self, notice_id: int) -> dict[int, str]:
        deliveries, _ = await self.store.list_deliveries(notice_id, None, 100)
        return {d.subscriber_id: d.state for d in deliveries}

    async def feedback(self) -> list[Any]:
        items, _ = await self.store.list_feedback(department="civil-affairs", unlinked=False, notice_id=None,
                                                  state=None, overdue=None, cursor=None, limit=10)
        return items


@pytest.fixture(params=["aliyun", "tencent"])
async def setup(request: pytest.FixtureRequest, store: Store, settings: Settings, tmp_path: Path
                ) -> AsyncIterator[Setup]:  # fmt: skip
    name = request.param
    async with FakeAliyun() if name == "aliyun" else FakeTencent() as fake:
        alias = f"sms-{name}"
        platform = Platform(name, alias, "/hooks/aliyun-sms/up" if name == "aliyun" else "/hooks/tencent-sms/reply",
                            fake, {"code": 0, "msg": "接收成功"} if name == "aliyun" else {"result": 0, "errmsg": "OK"})
        app_settings = Settings.model_validate({
            "database": {"url": settings.database.url}, "engine": {"inbox_dir": str(tmp_path / "inbox")},
            "channels": {alias: channel_options(name, fake.url)},
        })  # fmt: skip
        server = TestServer(create_app(app_settings, store=store), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                yield Setup(str(server.make_url("")).rstrip("/"), store, app_settings, platform, session)
        finally:
            await server.close()


async def resident(store: Store, name: str, phone: str, area: str = VILLAGE_A1) -> int:
    data = {"name": name, "phone": phone, "area_code": area, "channels": ["sms"]}
    return (await store.create_subscriber(SubscriberIn.model_validate(data), "test")).id


async def approved(store: Store, title: str, **fields: Any) -> int:
    data = {"topic": "social-assistance", "title": title, "body": "请于12月5日前到村委会领取。",
            "target": {"areas": [VILLAGE_A1[:9]]}, "channels": ["sms"], **fields}
    notice, _ = await store.create_notice(NoticeIn.model_validate(data), department="civil-affairs",
                                          created_by=None, actor="test")
    await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    return notice.id


async def test_a_reply_of_1_confirms_other_text_becomes_feedback_and_its_answer_goes_back_on_the_platform(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifier")
    store = setup.store
    asker = await resident(store, "王秀英", ASKER)
    other = await resident(store, "李建国", OTHER, VILLAGE_A2)
    notice_id = await approved(store, "低保金发放通知", confirmation={"remind_after_minutes": 120})
    await setup.send()
    assert setup.platform.sent_texts(ASKER)[0].endswith("回复1确认收到")

    assert await setup.push(ASKER, "1") == (200, setup.platform.answer)
    assert await setup.states(notice_id) == {asker: "confirmed", other: "sent"}

    assert await setup.push(OTHER, QUESTION) == (200, setup.platform.answer)
    [item] = await setup.feedback()
    assert (item.notice_id, item.subscriber_id, item.channel, item.contact, item.text) == (
        notice_id, other, "sms", OTHER, QUESTION)
    assert await setup.states(notice_id) == {asker: "confirmed", other: "sent"}  # feedback confirms nothing

    _, key = await store.create_api_key(department="civil-affairs", role=Role.ISSUER, name="clerk", actor="test")
    async with setup.session.post(f"{setup.base}/api/v1/feedback/{item.id}/reply", json={"text": "12月3日发放。"},
                                  headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200, await response.text()
    await setup.send()
    assert "12月3日发放。" in setup.platform.sent_texts(OTHER)[-1]  # back through the platform it came from

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("notifier"))
    assert "13900139002" not in logged and "13900139001" not in logged and TOKEN not in logged
    assert QUESTION not in logged


async def test_an_opt_out_word_unsubscribes_and_a_repeated_push_is_taken_once(setup: Setup) -> None:
    store = setup.store
    quitter = await resident(store, "赵四", QUITTER)
    await resident(store, "李建国", OTHER, VILLAGE_A2)
    await approved(store, "冬季取暖提示")
    await setup.send()

    assert await setup.push(QUITTER, "ＴＤ ") == (200, setup.platform.answer)
    assert "sms" in (await store.get_subscriber(quitter)).opt_out_channels

    push = setup.platform.push_of(OTHER, QUESTION)
    for _ in range(3):  # the platform pushes again when it did not hear our answer
        assert await setup.platform.fake.push(setup.hook_url(), push) == (200, setup.platform.answer)
    assert len(await setup.feedback()) == 1
    assert await setup.push(OTHER, QUESTION + "还有一个问题") == (200, setup.platform.answer)  # a new reply
    assert len(await setup.feedback()) == 2


async def test_a_confirmation_through_the_platform_counts_for_the_latest_notice_awaiting_it(setup: Setup) -> None:
    store = setup.store
    asker = await resident(store, "王秀英", ASKER)
    first = await approved(store, "临时救助金发放通知", confirmation={})
    latest = await approved(store, "低保金发放通知", confirmation={})
    await setup.send()
    assert await setup.push(ASKER, "１") == (200, setup.platform.answer)  # a full-width 1 counts too
    assert (await setup.states(first), await setup.states(latest)) == ({asker: "sent"}, {asker: "confirmed"})


@pytest.mark.parametrize("token", ["wrong", ""])
async def test_a_wrong_token_is_a_403_and_takes_nothing(setup: Setup, token: str) -> None:
    await resident(setup.store, "李建国", OTHER)
    await approved(setup.store, "冬季取暖提示")
    await setup.send()
    status, body = await setup.push(OTHER, QUESTION, token=token)
    assert status == 403 and body["type"] == "/problems/forbidden"
    assert await setup.feedback() == []


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'"a string"', b"12", b"[1, 2", b"\xff\xfe[]", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "text", "string", "number", "truncated", "not-utf8", "deep"],
)
async def test_an_unreadable_push_is_a_400_problem(setup: Setup, body: bytes) -> None:
    async with setup.session.post(setup.hook_url(), data=body,
                                  headers={"Content-Type": "application/json"}) as response:
        assert (response.status, response.content_type) == (400, "application/problem+json")


ODD: list[Any] = [
    [], [{}], [None, 1, "x", []], [{"phone_number": "12345", "content": "1", "mobile": "12345", "text": "1"}],
    [{"phone_number": None, "content": {"a": 1}, "mobile": ["x"], "text": None, "nationcode": 86}],
    [{"phone_number": "13900139002", "content": "", "mobile": "13900139002", "text": "", "nationcode": "86"}],
    {"mobile": "13900139099", "nationcode": "86", "text": "x" * 100_000, "phone_number": "13900139099",
     "content": "x" * 100_000},
]


@pytest.mark.parametrize("body", ODD, ids=range(len(ODD)))
async def test_odd_entries_are_skipped_never_a_500(setup: Setup, body: Any) -> None:
    async with setup.session.post(setup.hook_url(), json=body) as response:
        if setup.platform.name == "aliyun" and not isinstance(body, list):
            assert response.status == 400
        else:
            assert (response.status, await response.json()) == (200, setup.platform.answer)


async def test_a_reply_answered_503_is_taken_when_the_platform_pushes_it_again(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push is remembered (so that a repeat is taken once) before the reply is taken: when it then can be
    neither stored nor kept, the answer is 503 and the platform's next push of it must not pass for a repeat."""
    await resident(setup.store, "李建国", OTHER, VILLAGE_A2)
    await approved(setup.store, "冬季取暖提示")
    await setup.send()
    inbox = Path(setup.settings.engine.inbox_dir)
    await asyncio.to_thread(inbox.write_text, "a file where the inbox folder should be: nothing can be kept")

    async def database_gone(*args: Any) -> str:
        raise ConnectionError("the database went away")

    monkeypatch.setattr("notifier.api.sms_replies.apply_text_reply", database_gone)
    push = setup.platform.push_of(OTHER, QUESTION)
    status, problem = await setup.platform.fake.push(setup.hook_url(), push)
    assert (status, problem["type"]) == (503, "/problems/unavailable")
    assert await setup.feedback() == []

    monkeypatch.undo()
    await asyncio.to_thread(inbox.unlink)
    assert await setup.platform.fake.push(setup.hook_url(), push) == (200, setup.platform.answer)
    assert [item.text for item in await setup.feedback()] == [QUESTION]
