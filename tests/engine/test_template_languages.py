"""A resident reads a notice in their language when its template has it, in Chinese otherwise; a notice renders
with the template version it recorded at creation, whatever was saved after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channels import load_channels
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.domain.templates import TemplateDraft, TemplateIn
from notifier.engine import Engine, Renderer, check_renders
from notifier.store import Store
from tests.databases import database_url
from tests.engine.conftest import COUNTY, resident
from tests.held_rendering import HeldRendering


def outbox_settings(tmp_path: Path) -> Settings:
    outbox = {"type": "outbox", "root": str(tmp_path / "outbox")}
    return Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "engine.db")},
            "channels": {"sms": {"kind": "sms", **outbox}, "email": {"kind": "email", **outbox}},
        }
    )


def outbox(tmp_path: Path, kind: str) -> list[tuple[str, str]]:
    """(recipient, text) of every message written, in delivery order."""
    found = []
    for file in sorted((tmp_path / "outbox" / kind).glob("*.txt"), key=lambda f: int(f.stem)):
        head, _, text = file.read_text(encoding="utf-8").partition("\n\n")
        found.append((head.splitlines()[0].removeprefix("To: "), text))
    return found


async def issue(store: Store, **fields: object) -> int:
    """A notice checked, created with the version it was checked against, and approved, as the API does."""
    notice = NoticeIn.model_validate({"topic": "air-quality", "target": {"areas": [COUNTY]}, **fields})
    version = await check_renders(store, notice, "environment", Renderer())
    created, _ = await store.create_notice(
        notice, department="environment", created_by=None, actor="test", template_version=version.version
    )
    approved = await store.transition_notice(created.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    return approved.id


async def test_each_resident_gets_the_template_in_their_language_falling_back_to_chinese(
    engine_store: Store, tmp_path: Path
) -> None:
    settings = outbox_settings(tmp_path)
    await resident(engine_store, phone="+8613900000001", language="en")
    await resident(engine_store, phone="+8613900000002", language="zh")
    await resident(engine_store, phone="+8613900000003", language="en-GB")
    await resident(engine_store, phone="+8613900000004", language="ko")  # no Korean text: Chinese
    data = {"level": "橙色", "start_date": "12月1日", "measures": "停止户外活动。"}
    await issue(engine_store, title="重污染天气预警", template="heavy-pollution", data=data, channels=["sms"])

    await Engine(engine_store, settings, load_channels(settings)).run_until_idle()

    texts = dict(outbox(tmp_path, "sms"))
    english = "重污染天气预警: 橙色 heavy-pollution alert from 12月1日. 停止户外活动。 (生态环境分局)"
    chinese = "重污染天气预警：12月1日起启动重污染天气橙色预警，停止户外活动。（生态环境分局）"
    assert texts["+8613900000001"].strip() == english
    assert texts["+8613900000003"].strip() == english
    assert texts["+8613900000002"].strip() == chinese
    assert texts["+8613900000004"].strip() == chinese


async def test_a_notice_keeps_the_version_it_was_created_with(engine_store: Store, tmp_path: Path) -> None:
    settings = outbox_settings(tmp_path)
    await resident(engine_store, phone="+8613900000001")
    first = TemplateIn(name="water-cut", texts={"zh": {"sms": "{{ title }}：第一版"}})
    await engine_store.create_template(first, department="environment", actor="test")
    before = await issue(engine_store, title="停水", template="water-cut", channels=["sms"])
    second = TemplateDraft(
        fields=[{"name": "hours", "sample": "3"}], texts={"zh": {"sms": "{{ title }}：第二版，停水{{ hours }}小时"}}
    )
    saved = await engine_store.save_template_version("water-cut", second, actor="test")
    assert saved.version == 2

    await Engine(engine_store, settings, load_channels(settings)).run_until_idle()
    assert (await engine_store.get_notice(before)).state is not NoticeState.CANCELLED
    assert [text for _, text in outbox(tmp_path, "sms")] == ["停水：第一版\n"]
    assert (await engine_store.get_notice(before)).template_version == 1

    after = await issue(engine_store, title="停水", template="water-cut", channels=["sms"], data={"hours": "4"})
    await Engine(engine_store, settings, load_channels(settings)).run_until_idle()
    assert [text for _, text in outbox(tmp_path, "sms")] == ["停水：第一版\n", "停水：第二版，停水4小时\n"]
    assert (await engine_store.get_notice(after)).template_version == 2


async def test_the_event_loop_runs_while_a_notice_renders_for_its_fan_out(
    engine_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fan-out's first rendering is held until the loop has run a callback: on the loop's own thread the
    callback would run only after the hold gave up."""
    settings = outbox_settings(tmp_path)
    await resident(engine_store, phone="+8613900000001", language="zh")
    await issue(engine_store, title="停水通知", body="明日停水。", channels=["sms"])
    held = HeldRendering(monkeypatch)
    engine = Engine(engine_store, settings, load_channels(settings))
    run = asyncio.create_task(engine.run_until_idle())
    assert await held.started()
    loop_ran = asyncio.Event()
    asyncio.get_running_loop().call_soon(loop_ran.set)
    await loop_ran.wait()
    held.events.append("the loop ran")
    held.release()
    await run
    assert held.events == ["the loop ran", "rendering released"]
    assert [text for _, text in outbox(tmp_path, "sms")] and "明日停水" in outbox(tmp_path, "sms")[0][1]
