"""Rendering: one notice, one text per channel kind, rendered once and stored for every delivery.

Templates live in ``templates/<name>/<channel>.<ext>`` (``txt`` for the text, ``html`` for an
e-mail's HTML part), with ``templates/<name>/default.txt`` for a channel without its own file. A
notice with a ``body`` and no ``template`` uses ``templates/notice/``. Templates run in a sandbox
with StrictUndefined, so a missing variable is an error, never a blank in a message: a new notice is
rendered for every kind it asks for before it is stored (``problems``), and refused when that fails;
HTML is autoescaped. The context: ``title``, ``body``, ``severity``, ``severity_label``,
``topic``, ``department``, ``department_name``, ``notice_id``, ``public_url``, ``issued_at`` (the
approval time in the server's timezone, RFC 3339; "" outside the engine), ``data`` (the
notice's data) and each key of ``data`` that does not shadow one of those names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, meta, nodes, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from notifier.domain.errors import FieldError

TEMPLATE_ROOT = Path(__file__).resolve().parents[2] / "templates"
DEFAULT_TEMPLATE = "notice"
SEVERITY_LABELS = {"info": "信息", "minor": "一般", "moderate": "较重", "severe": "严重", "extreme": "特别严重"}


class RenderError(Exception):
    """A template is missing or does not render with the notice's data."""


class Renderer:
    def __init__(self, root: Path = TEMPLATE_ROOT, public_url: str = "") -> None:
        self.root = root
        self.public_url = public_url
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(root)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=False),
            keep_trailing_newline=False,
        )

    def context(self, notice: Mapping[str, Any], department_name: str, *, issued_at: str = "") -> dict[str, Any]:
        data = dict(notice.get("data") or {})
        fixed = {
            "title": notice["title"],
            "body": notice.get("body") or "",
            "severity": notice["severity"],
            "severity_label": SEVERITY_LABELS.get(notice["severity"], notice["severity"]),
            "topic": notice["topic"],
            "department": notice["department"],
            "department_name": department_name,
            "notice_id": notice.get("id"),
            "public_url": self.public_url,
            "issued_at": issued_at,
            "data": data,
        }
        return {**data, **fixed}

    def render(self, template: str | None, channel: str, context: Mapping[str, Any]) -> dict[str, str | None]:
        """{"subject", "text", "html"} of one channel; RenderError names the template at fault."""
        name = template or DEFAULT_TEMPLATE
        text = self._first(name, [f"{channel}.txt", "default.txt"], context)
        if text is None:
            raise RenderError(f"no template {name}/{channel}.txt or {name}/default.txt")
        html = self._first(name, [f"{channel}.html"], context)
        return {"subject": str(context["title"]), "text": text.strip(), "html": html}

    def render_for(self, template: str | None, channel: str, context: Mapping[str, Any]) -> dict[str, str | None]:
        """``render`` as the fan-out stores it: a printout of a template without its own ``bulletin.txt``
        gets the header of ``templates/notice/bulletin.txt`` around the template's text."""
        rendered = self.render(template, channel, context)
        if channel == "bulletin" and template and not self.has(template, "bulletin.txt"):
            rendered = self.render(None, channel, {**context, "body": rendered["text"]})
        return rendered

    def problems(self, template: str | None, kinds: Iterable[str], context: Mapping[str, Any]) -> list[FieldError]:
        """Why the notice would not render for these channel kinds: an unknown template, a kind without a
        text, a field of ``data`` the template uses and the notice lacks (``data.<field>``), or the
        template's own error; empty when every kind renders."""
        name = template or DEFAULT_TEMPLATE
        if not (self.root / name).is_dir():
            return [FieldError("template", f"no template named {name}")]
        textless = [kind for kind in kinds if not (self.has(name, f"{kind}.txt") or self.has(name, "default.txt"))]
        found = [
            FieldError("template", f"template {name} has no text for {kind} ({kind}.txt or default.txt)")
            for kind in textless
        ]
        for kind in kinds:
            if kind in textless:
                continue
            try:
                self.render_for(template, kind, context)
            except RenderError as exc:
                missing = self.missing_fields(name, kind, context)
                found.extend(
                    [FieldError(f"data.{field}", f"template {name} uses it; data has no {field}") for field in missing]
                    or [FieldError("template", str(exc))]
                )
        return list(dict.fromkeys(found))

    def missing_fields(self, name: str, kind: str, context: Mapping[str, Any]) -> list[str]:
        """Fields the texts of ``kind`` read (``{{ field }}`` or ``{{ data.field }}``) that ``context`` lacks."""
        data = context.get("data") or {}
        missing: list[str] = []
        for file in (f"{kind}.txt", "default.txt", f"{kind}.html"):
            if not self.has(name, file):
                continue
            assert self.env.loader is not None
            source, _, _ = self.env.loader.get_source(self.env, f"{name}/{file}")
            tree = self.env.parse(source)
            missing += sorted(field for field in meta.find_undeclared_variables(tree) if field not in context)
            missing += sorted(field for field in _data_fields(tree) if field not in data)
            if file.endswith(".txt"):
                break  # the first text file found is the one rendered
        return list(dict.fromkeys(missing))

    def has(self, name: str, file: str) -> bool:
        """Whether ``templates/<name>/<file>`` exists."""
        try:
            self.env.get_template(f"{name}/{file}")
        except TemplateNotFound:
            return False
        return True

    def _first(self, name: str, files: list[str], context: Mapping[str, Any]) -> str | None:
        for file in files:
            try:
                template = self.env.get_template(f"{name}/{file}")
            except TemplateNotFound:
                continue
            try:
                return template.render(context)
            except Exception as exc:  # staff-authored template code: any error of it (x // 0 too) is its failure
                detail = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
                raise RenderError(f"template {name}/{file}: {detail}") from exc
        return None


def _data_fields(tree: nodes.Template) -> set[str]:
    """The keys read from ``data`` by name: ``data.field`` and ``data["field"]``."""
    fields: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "data":
            fields.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "data" and isinstance(item.arg, nodes.Const):
            fields.add(str(item.arg.value))
    return fields
