"""The channel registry and the outbox adapter; rendering errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from channels import load_channels
from channels.base import OutboundMessage, Sent
from channels.outbox import OutboxChannel
from notifier.config import Settings
from notifier.domain.builtin_templates import builtin_version
from notifier.domain.errors import ConfigError
from notifier.domain.templates import TemplateIn, TemplateVersion, unsaved_version
from notifier.engine import Engine, Renderer, RenderError
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.engine.conftest import approved, resident


def settings_with(channels: dict[str, dict[str, object]]) -> Settings:
    return Settings.model_validate({"channels": channels})


def test_registry_builds_outbox_adapters_per_alias(tmp_path: Path) -> None:
    adapters = load_channels(settings_with({"sms": {"kind": "sms", "type": "outbox", "root": str(tmp_path)}}))
    assert isinstance(adapters["sms"], OutboxChannel)
    assert adapters["sms"].folder == tmp_path / "sms"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "sms", "type": "outbox", "rooot": "x"}, "channels.sms.rooot: unknown option"),
        ({"kind": "sms", "type": "outbox", "root": 5}, "channels.sms.root: Input should be a valid string"),
        ({"kind": "sms", "type": "carrier-pigeon"}, "channels.sms.type: no channel adapter named 'carrier-pigeon'"),
    ],
)
def test_registry_names_the_bad_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_channels(settings_with({"sms": table}))
    assert message in str(error.value)


async def test_outbox_writes_one_file_per_message(tmp_path: Path) -> None:
    channel = OutboxChannel("sms", OutboxChannel.Options.model_validate({"root": str(tmp_path)}))
    await channel.open()
    message = OutboundMessage(7, 3, "sms", "sms", "+8613900000001", "明日停水", "n3-s1-sms", subject="通知")

    assert await channel.send([message]) == [Sent("outbox-7")]
    text = (tmp_path / "sms" / "7.txt").read_text(encoding="utf-8")
    assert text.startswith("To: +8613900000001\n")
    assert "Idempotency-Key: n3-s1-sms" in text
    assert text.endswith("\n明日停水\n")


async def test_outbox_keeps_the_first_message_when_the_reminder_is_resent(tmp_path: Path) -> None:
    channel = OutboxChannel("sms", OutboxChannel.Options.model_validate({"root": str(tmp_path)}))
    await channel.open()
    first = OutboundMessage(7, 3, "sms", "sms", "+8613900000001", "明日停水", "n3-s1-sms")
    reminder = OutboundMessage(7, 3, "sms", "sms", "+8613900000001", "请回复确认", "n3-s1-sms-r1", resend=1)

    assert await channel.send([first]) == [Sent("outbox-7")]
    assert await channel.send([reminder]) == [Sent("outbox-7-r1")]  # its own id, as Kannel's d7-r1
    assert sorted(path.name for path in (tmp_path / "sms").iterdir()) == ["7-r1.txt", "7.txt"]
    assert (tmp_path / "sms" / "7.txt").read_text(encoding="utf-8").endswith("\n明日停水\n")
    assert (tmp_path / "sms" / "7-r1.txt").read_text(encoding="utf-8").endswith("\n请回复确认\n")


async def test_outbox_end_to_end(engine_store: Store, tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"channels": {"sms": {"kind": "sms", "type": "outbox", "root": str(tmp_path / "outbox")}}}
    )
    await resident(engine_store)
    notice = await approved(engine_store)
    await Engine(engine_store, settings, load_channels(settings)).run_until_idle()

    files = list((tmp_path / "outbox" / "sms").glob("*.txt"))
    assert len(files) == 1
    assert "空气质量预警" in files[0].read_text(encoding="utf-8")
    assert (await engine_store.get_notice(notice.id)).counts == {"sms": {"sent": 1}}


def version_with(texts: dict[str, str]) -> TemplateVersion:
    return unsaved_version(TemplateIn(name="digest", texts={"zh": texts}), created_by="test")


def test_strict_templates_refuse_missing_data() -> None:
    renderer = Renderer()
    context = renderer.context(
        {"title": "t", "body": None, "severity": "info", "topic": "x", "department": "d", "data": {}}, "部门"
    )
    assert renderer.render(builtin_version("notice"), "sms", context)["text"] == "t：（部门）"
    with pytest.raises(RenderError, match=r"template digest has no text for sms"):
        renderer.render(version_with({"email": "{{ title }}"}), "sms", context)


def test_html_is_escaped_text_is_not() -> None:
    renderer = Renderer()
    context = renderer.context(
        {"title": "A & B", "body": "<b>x</b>", "severity": "info", "topic": "x", "department": "d", "data": {}}, "部"
    )
    rendered = renderer.render(builtin_version("notice"), "email", context)
    assert "<p>&lt;b&gt;x&lt;/b&gt;</p>" in (rendered["html"] or "")
    assert "<b>x</b>" in (rendered["text"] or "")


def test_undefined_variables_are_errors_not_blanks() -> None:
    renderer = Renderer()
    notice = {"title": "t", "body": None, "severity": "info", "topic": "x", "department": "d", "data": {"aqi": 80}}
    with pytest.raises(RenderError, match="unknown"):
        renderer.render(
            version_with({"sms": "{{ title }}: {{ data.aqi }} {{ unknown }}"}), "sms", renderer.context(notice, "部")
        )


async def test_engine_gives_area_adapters_the_printable_area_names(
    engine_store: Store, engine_settings: Settings
) -> None:
    class NamedAreas(RecordingChannel):
        names: dict[str, str] | None = None

        def use_area_names(self, names: Mapping[str, str]) -> None:
            self.names = dict(names)

    board = NamedAreas("board")
    engine = Engine(engine_store, engine_settings, {"board": board})
    await engine.start()
    await engine.stop()
    areas = {a.code: a for a in await engine_store.list_areas()}
    village = next(a for a in areas.values() if a.level == "village")
    assert board.names is not None
    assert board.names[village.code] == f"{areas[village.parent or ''].name} {village.name}"
    assert board.names[village.parent or ""] == areas[village.parent or ""].name
