"""Rendering: one notice, one text per channel kind, rendered once and stored for every delivery.

Templates live in ``templates/<name>/<channel>.<ext>`` (``txt`` for the text, ``html`` for an
e-mail's HTML part), with ``templates/<name>/default.txt`` for a channel without its own file. A
notice with a ``body`` and no ``template`` uses ``templates/notice/``. Templates run in a sandbox
with StrictUndefined, so a missing variable is an error at fan-out, never a blank in a message;
HTML is autoescaped. The context: ``title``, ``body``, ``severity``, ``severity_label``,
``topic``, ``department``, ``department_name``, ``notice_id``, ``public_url``, ``issued_at`` (the
approval time in the server's timezone, RFC 3339; "" outside the engine), ``data`` (the
notice's data) and each key of ``data`` that does not shadow one of those names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_ROOT = Path(__file__).resolve().parents[2] / "templates"
DEFAULT_TEMPLATE = "notice"
SEVERITY_LABELS = {"info": "信息", "minor": "一般", "moderate": "较重", "severe": "严重", "extreme": "特别严重"}


class RenderError(Exception):
    """A template is missing or does not render with the notice's data."""


class Renderer:
    def __init__(self, root: Path = TEMPLATE_ROOT, public_url: str = "") -> None:
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
            except TemplateError as exc:
                raise RenderError(f"template {name}/{file}: {exc}") from exc
        return None
