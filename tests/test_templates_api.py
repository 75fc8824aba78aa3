"""/api/v1/templates: versions, the checks of a save (each problem naming the slot and the line), who may edit,
and a notice refused when it misses a declared field."""

from __future__ import annotations

from typing import Any

from notifier.domain.builtin_templates import builtin_templates
from notifier.domain.templates import unsaved_version
from notifier.engine.render import Renderer
from notifier.engine.template_checks import check_template
from tests.conftest import TOWN_A, Api

WATER: dict[str, Any] = {
    "name": "water-cut",
    "description": "停水通知",
    "fields": [{"name": "hours", "label": "停水时长", "sample": "3"}, {"name": "street", "sample": "朝阳街"}],
    "texts": {
        "zh": {"sms": "{{ title }}：{{ street }}停水{{ hours }}小时。", "default": "{{ title }}\n\n{{ body }}"},
        "en": {"sms": "{{ title }}: no water in {{ street }} for {{ hours }} h."},
    },
}
NOTICE: dict[str, Any] = {
    "topic": "air-quality",
    "title": "停水通知",
    "template": "water-cut",
    "data": {"hours": "2", "street": "新华路"},
    "target": {"areas": [TOWN_A]},
    "channels": ["sms", "wechat"],
}


def locations(problem: dict[str, Any]) -> list[str]:
    return [error["loc"] for error in problem["errors"]]


async def test_the_built_in_templates_are_listed_as_their_first_version(api: Api) -> None:
    status, page = await api.call("GET", "/api/v1/templates?limit=50", key="env-viewer")
    assert status == 200, page
    names = {item["name"]: item for item in page["items"]}
    assert {"notice", "heavy-pollution"} <= set(names)
    heavy = names["heavy-pollution"]
    assert heavy["version"] == 1 and heavy["department"] is None and heavy["created_by"] == "builtin"
    assert [field["name"] for field in heavy["fields"]] == ["level", "start_date", "measures"]
    assert set(heavy["texts"]) == {"zh", "en"} and "{{ level }}" in heavy["texts"]["zh"]["sms"]


async def test_each_save_is_a_new_version_and_the_old_ones_stay(api: Api) -> None:
    status, created = await api.call("POST", "/api/v1/templates", json=WATER, key="env-approver")
    assert status == 201, created
    assert (created["version"], created["department"], created["created_by"]) == (
        1,
        "environment",
        created["created_by"],
    )
    draft = {key: value for key, value in WATER.items() if key != "name"}
    draft["texts"] = {"zh": {"sms": "{{ title }}：{{ street }}停水{{ hours }}小时，请储水。"}}
    status, saved = await api.call("PUT", "/api/v1/templates/water-cut", json=draft, key="env-approver")
    assert status == 200 and saved["version"] == 2, saved
    status, latest = await api.call("GET", "/api/v1/templates/water-cut", key="env-viewer")
    assert status == 200 and latest["version"] == 2 and "请储水" in latest["texts"]["zh"]["sms"]
    status, versions = await api.call("GET", "/api/v1/templates/water-cut/versions", key="env-viewer")
    assert [v["version"] for v in versions["items"]] == [2, 1]
    status, first = await api.call("GET", "/api/v1/templates/water-cut/versions/1", key="env-viewer")
    assert status == 200 and "en" in first["texts"] and "请储水" not in first["texts"]["zh"]["sms"]
    status, problem = await api.call("POST", "/api/v1/templates", json=WATER, key="env-approver")
    assert status == 409, problem
    assert (await api.call("GET", "/api/v1/templates/water-cut/versions/3", key="env-viewer"))[0] == 404
    assert (await api.call("GET", "/api/v1/templates/no-such", key="env-viewer"))[0] == 404
    entries = [e for e in (await api.call("GET", "/api/v1/audit?limit=500", key="env-admin"))[1]["items"]]
    assert [(e["action"], e["detail"]["version"]) for e in entries if e["object_type"] == "template"] == [
        ("template.create", 1),
        ("template.update", 2),
    ]


async def test_a_save_is_checked_and_each_problem_names_the_slot_and_the_line(api: Api) -> None:
    bad = {
        **WATER,
        "texts": {
            "zh": {"sms": "{{ title }}\n{{ street }}\n{% if hours %}停水", "default": "{{ title }}\n\n{{ wind }}"},
            "en": {"email": "{{ data.colour }}"},
        },
    }
    status, problem = await api.call("POST", "/api/v1/templates", json=bad, key="env-approver")
    assert status == 422, problem
    errors = {(e["loc"], e["msg"].split(":")[0]) for e in problem["errors"]}
    assert errors == {("texts.zh.sms", "line 3"), ("texts.zh.default", "line 3"), ("texts.en.email", "line 1")}
    messages = " ".join(e["msg"] for e in problem["errors"])
    assert "wind is not a declared field" in messages and "colour is not a declared field" in messages
    long_sms = {**WATER, "texts": {"zh": {"sms": "{{ title }}" + "请注意用水安全。" * 70}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=long_sms, key="env-approver")
    assert status == 422 and locations(problem) == ["texts.zh.sms"], problem
    assert "parts" in problem["errors"][0]["msg"] and "500" in problem["errors"][0]["msg"]
    # the same text with a short sample fits: the length is measured with the samples
    no_zh = {**WATER, "texts": {"en": {"sms": "x"}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=no_zh, key="env-approver")
    assert status == 422 and locations(problem) == ["texts"], problem
    shadowing = {**WATER, "fields": [{"name": "title", "sample": "x"}], "texts": {"zh": {"sms": "{{ title }}"}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=shadowing, key="env-approver")
    assert status == 422 and locations(problem) == ["fields.title"], problem
    status, _ = await api.call("GET", "/api/v1/templates/water-cut", key="env-viewer")
    assert status == 404  # nothing of a refused save is stored


async def test_a_runtime_error_with_the_samples_is_refused(api: Api) -> None:
    dividing = {**WATER, "texts": {"zh": {"sms": "{{ title }}{{ hours | int // 0 }}"}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=dividing, key="env-approver")
    assert status == 422 and locations(problem) == ["texts.zh.sms"], problem
    assert "ZeroDivisionError" in problem["errors"][0]["msg"]


async def test_the_sandbox_refuses_reaching_into_python(api: Api) -> None:
    escape = {**WATER, "texts": {"zh": {"sms": "{{ title.__class__.__mro__[1].__subclasses__() }}"}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=escape, key="env-approver")
    assert status == 422 and locations(problem) == ["texts.zh.sms"], problem
    assert "unsafe" in problem["errors"][0]["msg"]


async def test_who_may_edit(api: Api) -> None:
    for key in ("env-issuer", "env-viewer"):
        status, problem = await api.call("POST", "/api/v1/templates", json=WATER, key=key)
        assert status == 403, problem
        # the role is checked before the body: a key that may not edit learns nothing from a bad one
        assert (await api.call("POST", "/api/v1/templates", json={"name": 1}, key=key))[0] == 403
        assert (await api.call("PUT", "/api/v1/templates/notice", json={"texts": 1}, key=key))[0] == 403
    assert (await api.call("POST", "/api/v1/templates", json=WATER, key="env-approver"))[0] == 201
    draft = {key: value for key, value in WATER.items() if key != "name"}
    status, problem = await api.call("PUT", "/api/v1/templates/water-cut", json=draft, key="civ-approver")
    assert status == 403 and "environment" in problem["detail"], problem
    status, problem = await api.call("PUT", "/api/v1/templates/water-cut", json=draft, key="civ-admin")
    assert status == 403, problem
    notice_draft = {"texts": {"zh": {"sms": "{{ title }}：{{ body }}"}}}
    status, problem = await api.call("PUT", "/api/v1/templates/notice", json=notice_draft, key="env-approver")
    assert status == 403 and "admins" in problem["detail"], problem
    status, saved = await api.call("PUT", "/api/v1/templates/notice", json=notice_draft, key="env-admin")
    assert status == 200 and saved["version"] == 2, saved
    assert (await api.call("PUT", "/api/v1/templates/nope", json=draft, key="env-admin"))[0] == 404


async def test_a_notice_missing_a_declared_field_is_refused_naming_it(api: Api) -> None:
    """The field is declared and no text of the kinds asked for reads it: refused all the same."""
    template = {**WATER, "fields": [*WATER["fields"], {"name": "contact", "sample": "12345"}]}
    assert (await api.call("POST", "/api/v1/templates", json=template, key="env-approver"))[0] == 201
    status, problem = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 422 and locations(problem) == ["data.contact"], problem
    status, notice = await api.call(
        "POST", "/api/v1/notices", json={**NOTICE, "data": {**NOTICE["data"], "contact": "1"}}
    )
    assert status == 201 and notice["template_version"] == 1, notice


def test_the_shipped_templates_pass_the_checks_of_a_save() -> None:
    for template in builtin_templates():
        assert check_template(unsaved_version(template, created_by="builtin"), Renderer()) == [], template.name


async def test_a_template_named_new_is_refused_as_the_console_refuses_it(api: Api) -> None:
    """/console/templates/new is the console's new-template page: a template called new could never be opened."""
    status, problem = await api.call("POST", "/api/v1/templates", json={**WATER, "name": "new"}, key="env-approver")
    assert status == 422 and locations(problem) == ["name"], problem
    assert "new is reserved" in problem["errors"][0]["msg"], problem
    assert (await api.call("GET", "/api/v1/templates/new", key="env-viewer"))[0] == 404
    status, created = await api.call(
        "POST", "/api/v1/templates", json={**WATER, "name": "new-road"}, key="env-approver"
    )
    assert status == 201 and created["name"] == "new-road", created
