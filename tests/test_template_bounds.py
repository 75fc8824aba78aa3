"""A staff-written template cannot make one rendering work for ever or fill the memory: each source below
would, at full size (10**9 instead of the 10**6 used here), stop the event loop for minutes or exhaust the
memory; the sizes here stay cheap even unbounded, and are past the sandbox's bounds (engine.template_sandbox).
Refused at the template's save and at a roster notice's creation (an issuer writes that body) with a 422
naming the slot or the body."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.domain.templates import TemplateIn, unsaved_version
from notifier.engine import template_sandbox
from notifier.engine.render import Renderer
from notifier.engine.template_checks import check_template
from tests.conftest import Api

NESTED_LOOPS = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}{{ title }}"
HOSTILE = {
    "nested loops": (NESTED_LOOPS, "too much work"),
    "nested loops over a list": (
        "{% set r = range(1000)|list %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
        "too much work",
    ),
    "a loop of unmetered work": (
        "{% for a in range(1000) %}{% if " + " and ".join(["a < 5000"] * 100) + " %}{% endif %}{% endfor %}",
        "too much work",
    ),
    "recursive macro": (
        "{% macro m(d) %}{% if d < 16 %}{{ m(d + 1) }}{{ m(d + 1) }}{% endif %}{% endmacro %}{{ m(0) }}",
        "too much work",
    ),
    "recursive loop": (
        "{% for a in range(3) recursive %}{% if loop.depth < 3 %}{{ loop(range(300)) }}{% endif %}{% endfor %}",
        "too much work",
    ),
    "string times a number": ("{{ ('x' * 1000000)|length }}", "1,000,000"),
    "a huge number": ("{{ (10 ** 100000) % 7 }}", "bits"),
    "center filter": ("{{ title|center(1000000)|length }}", "1,000,0"),
    "ljust method": ("{{ title.ljust(1000000)|length }}", "1,000,000"),
    "format width": ("{{ '{:>1000000}'.format(1)|length }}", "1,000,000"),
    "percent width": ("{{ ('%1000000d' % 1)|length }}", "1,000,000"),
    "batch fill": ("{{ [1]|batch(1000000, 'x')|first|length }}", "1,000,000"),
    "doubling by ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        "{{ ns.s|length }}",
        "131,072",
    ),
    "a list changed in place": ("{% set l = [1] %}{{ l.extend(l) }}", "unsafe"),
    "output": ("{% for a in range(200) %}{{ 'x' * 1000 }}{% endfor %}", "writes more than"),
}


# about 246,000 steps: within the bound of one rendering (MAX_WORK), and 3.7 times it in five languages
NEAR_THE_BOUND = "{% for a in range(170) %}{% for b in range(100) %}{% endfor %}{% endfor %}{{ title }}"


@pytest.fixture(autouse=True)
def no_time_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step count, not the clock of a busy test machine, is what these tests check."""
    monkeypatch.setattr(template_sandbox, "MAX_SECONDS", 60.0)
    monkeypatch.setattr(template_sandbox, "MAX_REQUEST_SECONDS", 180.0, raising=False)


def version(source: str) -> Any:
    template = TemplateIn(name="bounded", texts={"zh": {"default": source}})
    return unsaved_version(template, created_by="test")


@pytest.mark.parametrize("source, named", HOSTILE.values(), ids=list(HOSTILE))
def test_a_template_past_a_bound_is_refused_at_save(source: str, named: str) -> None:
    problems = check_template(version(source), Renderer())
    assert [problem.loc for problem in problems] == ["texts.zh.default"], problems
    assert "does not render with the samples" in problems[0].msg and named in problems[0].msg, problems[0].msg


def test_ordinary_loops_filters_and_macros_still_render() -> None:
    source = (
        "{% macro line(n) %}{{ n }}. {{ title|truncate(10) }}{% endmacro %}"
        "{% for n in range(1, 4) %}{{ line(n) }}{{ '%02d' % n }}{{ '{:>3}'.format(n) }}{% endfor %}"
        "{{ ('-' * 5) ~ severity_label|center(8) ~ (2 ** 10) }}"
    )
    assert check_template(version(source), Renderer()) == []


def test_a_rendering_past_its_time_is_stopped_at_the_next_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_sandbox, "MAX_SECONDS", 0.0)
    problems = check_template(version("{% for a in range(2) %}{{ a }}{% endfor %}"), Renderer())
    assert [problem.loc for problem in problems] == ["texts.zh.default"], problems
    assert "takes more than 0.0 s of processor time" in problems[0].msg


async def test_the_api_refuses_to_save_a_template_past_a_bound(api: Api) -> None:
    template = {"name": "busy-loop", "texts": {"zh": {"default": NESTED_LOOPS}}}
    status, problem = await api.call("POST", "/api/v1/templates", json=template, key="env-approver")
    assert status == 422, problem
    assert problem["errors"][0]["loc"] == "texts.zh.default" and "too much work" in problem["errors"][0]["msg"]
    status, _ = await api.call("GET", "/api/v1/templates/busy-loop", key="env-viewer")
    assert status == 404


async def test_an_issuer_s_roster_body_past_a_bound_is_refused_at_creation(api: Api) -> None:
    rows = [{"手机号": "13912340001", "姓名": "王一英", "金额": "500"}]
    status, roster = await api.call(
        "POST", "/api/v1/rosters", key="civ-issuer", json={"name": "临时救助", "key": "phone", "rows": rows}
    )
    assert status == 201, roster
    notice = {
        "topic": "social-assistance",
        "title": "救助金发放通知",
        "body": "{{ row.姓名 }}：{{ row.金额 }}元" + NESTED_LOOPS,
        "target": {"roster": roster["id"]},
        "channels": ["sms"],
    }
    status, problem = await api.call("POST", "/api/v1/notices", key="civ-issuer", json=notice)
    assert status == 422, problem
    assert problem["errors"][0]["loc"] == "body" and "too much work" in problem["errors"][0]["msg"], problem


async def test_a_save_whose_texts_together_pass_the_request_budget_is_refused_and_nothing_is_stored(api: Api) -> None:
    """Each text within the bound of one rendering, five of them are past what one request may render."""
    languages = ["zh", "en", "fr", "de", "es"]
    template = {"name": "many-languages", "texts": {language: {"default": NEAR_THE_BOUND} for language in languages}}
    status, problem = await api.call("POST", "/api/v1/templates", json=template, key="env-approver")
    assert status == 422, problem
    [error] = problem["errors"]
    assert error["loc"] in {f"texts.{language}.default" for language in languages[1:]}, error
    assert error["type"] == "render_budget" and "request's templates together" in error["msg"], error
    assert f"{template_sandbox.MAX_REQUEST_WORK:,} steps" in error["msg"], error
    status, _ = await api.call("GET", "/api/v1/templates/many-languages", key="env-viewer")
    assert status == 404
    template["texts"] = {language: {"default": NEAR_THE_BOUND} for language in languages[:3]}
    status, created = await api.call("POST", "/api/v1/templates", json=template, key="env-approver")
    assert status == 201, created
