"""A notice's template is checked when the notice is created; one that fails later stops it with a reason.

``templates/heavy-pollution`` (shipped) uses ``data.level``, ``data.start_date`` and ``data.measures``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState, Role
from notifier.engine import Engine
from notifier.engine.render import TEMPLATE_ROOT, Renderer
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
    # templates/bulletin holds the printout layout, no text for any channel
    status, problem = await api.call("POST", "/api/v1/notices", json={**NOTICE, "template": "bulletin"})
    assert status == 422 and locations(problem) == ["template", "template"], problem
    assert ["sms" in problem["errors"][0]["msg"], "wechat" in problem["errors"][1]["msg"]] == [True, True]


async def test_a_template_that_renders_with_its_data_is_accepted(api: Api) -> None:
    status, notice = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 201, notice
    assert notice["failure_reason"] is None


async def test_the_command_line_refuses_the_same_way(store: Store, settings: Settings, tmp_path: Path) -> None:
    _, issuer = await store.create_api_key(department="environment", role=Role.ISSUER, name="i", actor="t")
    payload = tmp_path / "notice.json"
    payload.write_text(json.dumps({**NOTICE, "data": {"level": "橙色"}}, ensure_ascii=False), encoding="utf-8")
    code, _, err = await run_cli("notices", "send", "--api-key", issuer, "--json", str(payload),
                                 db_url=settings.database.url)
    assert code == 2 and "data.start_date" in err and "data.measures" in err, err
    payload.write_text(json.dumps({**NOTICE, "template": "gone"}), encoding="utf-8")
    code, _, err = await run_cli("notices", "send", "--api-key", issuer, "--json", str(payload),
                                 db_url=settings.database.url)
    assert code == 2 and "template" in err, err
    items, _ = await store.list_notices(department=None, state=None, cursor=None, limit=10)
    assert items == []


@pytest.fixture
def changed_templates(tmp_path: Path) -> Path:
    """A copy of the shipped templates in which heavy-pollution's SMS text now needs a field no notice has."""
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATE_ROOT, root)
    (root / "heavy-pollution" / "sms.txt").write_text("{{ title }}：{{ wind_force }}级大风", encoding="utf-8")
    return root


async def test_a_notice_whose_template_stops_rendering_is_stopped_with_its_reason(
    store: Store, settings: Settings, changed_templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
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
            status, notice = await api.call("POST", "/api/v1/notices", json=NOTICE, key="issuer")
            assert status == 201, notice  # it rendered with the templates of the time
            for step, key in (("submit", "issuer"), ("approve", "approver")):
                assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/{step}", key=key))[0] == 200
            engine.ctx.renderer = Renderer(root=changed_templates)  # the template changed after approval
            with caplog.at_level(logging.ERROR):
                await engine.run_until_idle()
            status, stopped = await api.call("GET", f"/api/v1/notices/{notice['id']}", key="viewer")
            _, metrics = await api.call("GET", "/metrics", key=None)
            _, schema = await api.call("GET", "/openapi.json", key=None)
    finally:
        await server.close()
    assert status == 200 and stopped["state"] == NoticeState.CANCELLED
    assert "wind_force" in stopped["failure_reason"] and "heavy-pollution/sms.txt" in stopped["failure_reason"]
    assert sms.messages == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    line = record.getMessage()
    assert f"notice {notice['id']}" in line and "environment" in line and "wind_force" in line
    assert "13900000001" not in line and "王芳" not in line
    assert 'notifier_notices_failed{department="environment"} 1.0' in metrics
    assert "failure_reason" in schema["components"]["schemas"]["Notice"]["properties"]


def renderer_with(tmp_path: Path, files: dict[str, str]) -> Renderer:
    for name, text in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Renderer(root=tmp_path / "templates")


def check(renderer: Renderer, data: dict[str, Any], kinds: tuple[str, ...] = ("sms",)) -> list[tuple[str, str]]:
    notice = {"title": "t", "severity": "info", "topic": "air-quality", "department": "environment", "data": data}
    problems = renderer.problems("alert", kinds, renderer.context(notice, "生态环境分局"))
    return [(problem.loc, problem.msg) for problem in problems]


def test_a_guarded_field_may_be_left_out(tmp_path: Path) -> None:
    guarded = "{{ title }}{% if wind is defined %}，{{ wind }}级{% endif %}"
    renderer = renderer_with(tmp_path, {"alert/sms.txt": guarded})
    assert check(renderer, {}) == []


def test_fields_read_through_data_are_named_whichever_way_they_are_read(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"alert/default.txt": '{{ data.level }}{{ data["rain mm"] }}{{ data.ok }}'})
    assert [loc for loc, _ in check(renderer, {"ok": 1}, ("sms", "email"))] == ["data.level", "data.rain mm"]


def test_an_error_that_is_no_missing_field_names_the_template(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"alert/sms.txt": "{{ level | int // 0 }}"})
    [(loc, message)] = check(renderer, {"level": 3})
    assert loc == "template" and "alert/sms.txt" in message
