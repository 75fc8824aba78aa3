"""What a template save is checked for, before any notice can use it; each problem names the slot and the line.

- syntax: every source parses (``texts.<language>.<slot>``, "line N: ...");
- fields: a source reads only the renderer's context (``render.CONTEXT_NAMES``) and the declared fields, by
  name (``{{ level }}``) or through ``data`` (``{{ data.level }}``); anything else is named with its line;
  ``row`` (a roster row's cells, ``engine.personal``) is checked against the roster when a notice uses it;
- the sample: every slot renders with the declared fields' samples (``sample_context``);
- SMS length: the SMS text (the ``sms`` slot, else ``default``) of each language, rendered with the samples,
  is at most ``SMS_MAX_CHARS`` characters, the most a Chinese gateway takes for one message (signature
  included: see docs/api.md); the problem gives the length and the number of parts.

Every slot rendered counts against the request's budget (``template_sandbox.RenderBudget``): past it the save
is refused whole (``RenderBudgetSpent``, naming the slot it was rendering). These functions render: call them
through ``render_threads.rendered``, off the event loop.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from channels.sms_text import count_segments
from notifier.domain.errors import FieldError
from notifier.domain.templates import HTML_SLOTS, TemplateVersion
from notifier.engine.personal import ROW, SampleRow
from notifier.engine.render import CONTEXT_NAMES, RenderBudgetSpent, Renderer, RenderError, data_fields

SMS_MAX_CHARS = 500
SAMPLE_NOTICE = {
    "id": 1,
    "title": "关于启动重污染天气橙色预警的通知",
    "body": "请居民减少户外活动，关好门窗。",
    "severity": "severe",
    "topic": "air-quality",
    "department": "environment",
}
SAMPLE_DEPARTMENT = "县生态环境分局"
SAMPLE_ISSUED_AT = "2026-12-01T08:00:00+08:00"


def sample_context(version: TemplateVersion, renderer: Renderer) -> dict[str, Any]:
    """The context a template is checked and previewed with: a typical notice and each field's sample."""
    notice = {**SAMPLE_NOTICE, "data": {field.name: field.sample for field in version.fields}}
    return {**renderer.context(notice, SAMPLE_DEPARTMENT, issued_at=SAMPLE_ISSUED_AT), "row": SampleRow()}


def check_template(version: TemplateVersion, renderer: Renderer) -> list[FieldError]:
    """Every problem of a version about to be saved; empty when it may be saved."""
    declared = {field.name for field in version.fields}
    problems: list[FieldError] = []
    for field in version.fields:
        if field.name in CONTEXT_NAMES:
            problems.append(
                FieldError(f"fields.{field.name}", f"{field.name} is a name every template gets; choose another")
            )
    for language, slots in version.texts.items():
        for slot, source in slots.items():
            loc = f"texts.{language}.{slot}"
            env = renderer.html_env if slot in HTML_SLOTS else renderer.text_env
            try:
                tree = env.parse(source)
            except TemplateSyntaxError as exc:
                problems.append(FieldError(loc, f"line {exc.lineno}: {exc.message}", "template_syntax"))
                continue
            problems += _undeclared(tree, declared, loc)
    if problems:
        return problems
    return _sample_problems(version, renderer)


def _undeclared(tree: nodes.Template, declared: set[str], loc: str) -> list[FieldError]:
    unknown = sorted(meta.find_undeclared_variables(tree) - CONTEXT_NAMES - {ROW} - declared)
    unknown += sorted(data_fields(tree) - declared - set(unknown))
    return [
        FieldError(
            loc,
            f"line {_line_of(tree, name)}: {name} is not a declared field; declare it in fields or use one of "
            + ", ".join(sorted(CONTEXT_NAMES)),
            "undeclared_field",
        )
        for name in unknown
    ]


def _line_of(tree: nodes.Template, name: str) -> int:
    """The first line that reads ``name``, by name or through ``data``."""
    lines = [node.lineno for node in tree.find_all(nodes.Name) if node.name == name and node.ctx == "load"]
    lines += [
        node.lineno
        for node in tree.find_all(nodes.Getattr)
        if node.attr == name and isinstance(node.node, nodes.Name) and node.node.name == "data"
    ]
    lines += [
        node.lineno
        for node in tree.find_all(nodes.Getitem)
        if isinstance(node.node, nodes.Name)
        and node.node.name == "data"
        and isinstance(node.arg, nodes.Const)
        and node.arg.value == name
    ]
    return min(lines, default=1)


def _sample_problems(version: TemplateVersion, renderer: Renderer) -> list[FieldError]:
    context = sample_context(version, renderer)
    problems: list[FieldError] = []
    for language, slots in version.texts.items():
        for slot in slots:
            try:
                text = renderer.render_slot(version, language, slot, context)
            except RenderBudgetSpent as exc:
                raise exc.at(f"texts.{language}.{slot}") from None
            except RenderError as exc:
                problems.append(FieldError(f"texts.{language}.{slot}", f"does not render with the samples: {exc}"))
                continue
            if version.slot_for("sms", language) == slot:
                problems += _sms_length(text, f"texts.{language}.{slot}")
    return problems


def _sms_length(text: str, loc: str) -> list[FieldError]:
    if len(text) <= SMS_MAX_CHARS:
        return []
    parts = count_segments(text).segments
    return [
        FieldError(
            loc,
            f"line 1: the SMS with the sample data is {len(text)} characters ({parts} parts); "
            f"gateways take at most {SMS_MAX_CHARS}",
            "sms_too_long",
        )
    ]


def rendered_samples(version: TemplateVersion, renderer: Renderer) -> dict[str, dict[str, str]]:
    """Per language, per slot: the slot rendered with the samples (for previews); a slot that fails is left out,
    and so are the slots after the request's budget ran out (the save's own check says why)."""
    context = sample_context(version, renderer)
    previews: dict[str, dict[str, str]] = {}
    for language, slots in version.texts.items():
        for slot in slots:
            try:
                previews.setdefault(language, {})[slot] = renderer.render_slot(version, language, slot, context)
            except RenderError:
                continue
            except RenderBudgetSpent:
                return previews
    return previews
