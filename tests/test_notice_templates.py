"""A notice's template is checked when the notice is created; one that fails later stops it with a reason.

``templates/heavy-pollution`` (shipped) uses ``data.level``, ``data.start_date`` and ``data.measures``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.templates import TemplateIn, TemplateVersion, unsaved_version
from notifier.engine import Engine
from notifier.engine.render import Renderer
from notifier.store import Store
from notifier.testing import RecordingChannel
from tests.conftest import TOWN_A, VILLAGE_A1, Api
from tests.test_cli import run_cli

DATA = {"level": "橙色", "start_date": "12月1日", "measures": "中小学停止户外活动。"}
NOTICE: dict[str, Any] = {
    "topic": "air-quality",
    "title": "重污染天气预警",
    "template": "heavy-pollution",
    "data": DATA,
    "severity": "severe",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms", "wechat"],
}


def locations(problem: dict[str, Any]) -> list[str]:
    return [error["loc"] for error in problem["errors"]]


async def notice_count(api: Api) -> int:
    items, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    return len(items)


async def test_a_template_that_does_not_exist_is_refused_naming_template(api: Api) -> None:
    status, problem = await api.call("POST", "/api/v1/notices", json={**NOTICE, "template": "no-such-template"})
    assert status == 422, problem
    assert locations(problem) == ["template"] and "no-such-template" in problem["errors"][0]["msg"]
    assert await notice_count(api) == 0


async def test_a_field_the_template_uses_and_data_lacks_is_refused_naming_it(api: Api) -> None:
    data = {key: value for key, value in DATA.items() if key != "level"}
    status, problem = await api.call("POST", "/api/v1/notices", json={**NOTICE, "data": data})
    assert status == 422, problem
    assert locations(problem) == ["data.level"]
    status, problem = await api.call("POST", "/api/v1/notices", json={**NOTICE, "data": {}})
    assert status == 422 and sorted(locations(problem)) == ["data.level", "data.measures", "data.start_date"]
    assert await notice_count(api) == 0


async def test_a_template_without_a_text_for_a_requested_channel_is_refused(api: Api) -> None:
    only_sms = TemplateIn(name="sms-only", texts={"zh": {"sms": "{{ title }}"}})
    await api.store.create_template(only_sms, department="environment", actor="test")
    status, problem = await api.call(
        "POST", "/api/v1/notices", json={**NOTICE, "template": "sms-only", "channels": ["sms", "wechat", "email"]}
    )
    assert status == 422 and locations(problem) == ["template", "template"], problem
    assert ["wechat" in problem["errors"][0]["msg"], "email" in problem["errors"][1]["msg"]] == [True, True]


async def test_a_template_that_renders_with_its_data_is_accepted(api: Api) -> None:
    status, notice = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 201, notice
    assert notice["failure_reason"] is None


async def test_the_command_line_refuses_the_same_way(store: Store, settings: Settings, tmp_path: Path) -> None:
    _, issuer = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
    payload = tmp_path / "notice.json"
    payload.write_text(json.dumps({**NOTICE, "data": {"level": "橙色"}}, ensure_ascii=False), encoding="utf-8")
    code, _, err = await run_cli(
        "notices", "send", "--api-key", issuer, "--json", str(payload), db_url=settings.database.url
    )
    assert code == 2 and "data.start_date" in err and "data.measures" in err, err
    payload.write_text(json.dumps({**NOTICE, "template": "gone"}), encoding="utf-8")
    code, _, err = await run_cli(
        "notices", "send", "--api-key", issuer, "--json", str(payload), db_url=settings.database.url
    )
    assert code == 2 and "template" in err, err
    items, _ = await store.list_notices(department=None, state=None, cursor=None, limit=10)
    assert items == []


async def test_a_notice_that_does_not_render_at_fan_out_is_stopped_with_its_reason(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The safety net behind the checks: a version stored without them (here straight through the store; the API
    would refuse it) that renders at creation, when ``issued_at`` is still empty, and fails once it is set."""
    fragile = TemplateIn(name="fragile", texts={"zh": {"default": "{{ title }}{{ 1 // (issued_at | length - 25) }}"}})
    await store.create_template(fragile, department="environment", actor="test")
    resident = {"name": "王芳", "phone": "13900000001", "area_code": VILLAGE_A1, "channels": ["sms"]}
    sms = RecordingChannel("sms")
    engine = Engine(store, settings, {"sms": sms, "wechat": RecordingChannel("wechat")})

    async def engine_factory(app: object) -> Engine | None:
        return engine

    server = TestServer(create_app(settings, store=store, engine_factory=engine_factory), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            keys = {}
            for role in (Role.ISSUER, Role.APPROVER, Role.VIEWER):
                _, keys[role.value] = await store.create_api_key(
                    department="environment", role=role, name=role.value, actor="t"
                )
            api = Api(str(server.make_url("")).rstrip("/"), session, keys, store)
            assert (await api.call("POST", "/api/v1/subscribers", json=resident, key="issuer"))[0] == 201
            status, notice = await api.call(
                "POST", "/api/v1/notices", json={**NOTICE, "template": "fragile"}, key="issuer"
            )
            assert status == 201, notice
            for step, key in (("submit", "issuer"), ("approve", "approver")):
                assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/{step}", key=key))[0] == 200
            with caplog.at_level(logging.ERROR):
                await engine.run_until_idle()
            status, stopped = await api.call("GET", f"/api/v1/notices/{notice['id']}", key="viewer")
            _, metrics = await api.call("GET", "/metrics", key=None)
            _, schema = await api.call("GET", "/openapi.json", key=None)
    finally:
        await server.close()
    assert status == 200 and stopped["state"] == NoticeState.CANCELLED
    assert "ZeroDivisionError" in stopped["failure_reason"] and "fragile v1 zh/default" in stopped["failure_reason"]
    assert sms.messages == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    line = record.getMessage()
    assert f"notice {notice['id']}" in line and "environment" in line and "ZeroDivisionError" in line
    assert "13900000001" not in line and "王芳" not in line
    assert 'notifier_notices_failed{department="environment"} 1.0' in metrics
    assert "failure_reason" in schema["components"]["schemas"]["Notice"]["properties"]


def version_with(texts: dict[str, str]) -> TemplateVersion:
    return unsaved_version(TemplateIn(name="alert", texts={"zh": texts}), created_by="test")


def check(version: TemplateVersion, data: dict[str, Any], kinds: tuple[str, ...] = ("sms",)) -> list[tuple[str, str]]:
    renderer = Renderer()
    notice = {"title": "t", "severity": "info", "topic": "air-quality", "department": "environment", "data": data}
    problems = renderer.problems(version, kinds, renderer.context(notice, "生态环境分局"))
    return [(problem.loc, problem.msg) for problem in problems]


def test_a_guarded_field_may_be_left_out() -> None:
    guarded = "{{ title }}{% if wind is defined %}，{{ wind }}级{% endif %}"
    assert check(version_with({"sms": guarded}), {}) == []


def test_fields_read_through_data_are_named_whichever_way_they_are_read() -> None:
    version = version_with({"default": '{{ data.level }}{{ data["rain mm"] }}{{ data.ok }}'})
    assert [loc for loc, _ in check(version, {"ok": 1}, ("sms", "email"))] == ["data.level", "data.rain mm"]


def test_an_error_that_is_no_missing_field_names_the_template() -> None:
    [(loc, message)] = check(version_with({"sms": "{{ level | int // 0 }}"}), {"level": 3})
    assert loc == "template" and "alert v1 zh/sms" in message
