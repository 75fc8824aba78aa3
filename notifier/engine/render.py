"""Rendering: one notice, one text per channel kind and language, rendered once and stored for every delivery.

A template is a stored version (``notifier.domain.templates``), never a file read at send time: a notice
records the version it was checked against at creation and renders with it. A notice with a ``body`` and
no ``template`` uses the template ``notice``. Sources run in jinja2's sandbox with StrictUndefined, so a
missing variable is an error, never a blank in a message; the ``email_html`` slot is autoescaped, text
slots are not (they are never read as HTML). The context (``CONTEXT_NAMES``): ``title``, ``body``,
``severity``, ``severity_label`` (in the language rendered), ``topic``, ``department``,
``department_name``, ``notice_id``, ``public_url``, ``issued_at`` (the approval time in the server's
timezone, RFC 3339; "" outside the engine), ``language`` (the language rendered), ``data`` (the
notice's data) and each key of ``data`` that does not shadow one of those names.

A printout (kind ``bulletin``) of a template without its own ``bulletin`` slot is the template's text
inside the printout frame ``templates/notice/bulletin.txt`` (the header block ``channels.bulletin_cups``
reads): a machine format, kept in the code, not a staff-editable template.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes

from notifier.domain.builtin_templates import TEMPLATE_ROOT
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.templates import FALLBACK_LANGUAGE, HTML_SLOTS, TemplateVersion
from notifier.engine.template_sandbox import BoundedSandbox, RequestBudgetSpent, render_bounded

DEFAULT_TEMPLATE = "notice"
COMPILED_KEPT = 1024  # compiled sources a renderer keeps, the least recently used forgotten first
PRINTOUT_FRAME = TEMPLATE_ROOT / "notice" / "bulletin.txt"
SEVERITY_LABELS = {
    "zh": {"info": "信息", "minor": "一般", "moderate": "较重", "severe": "严重", "extreme": "特别严重"},
    "en": {"info": "Information", "minor": "Minor", "moderate": "Moderate", "severe": "Severe", "extreme": "Extreme"},
}
CONTEXT_NAMES = frozenset(
    {
        "title",
        "body",
        "severity",
        "severity_label",
        "topic",
        "department",
        "department_name",
        "notice_id",
        "public_url",
        "issued_at",
        "language",
        "data",
    }
)

__all__ = [
    "CONTEXT_NAMES",
    "DEFAULT_TEMPLATE",
    "TEMPLATE_ROOT",
    "RenderBudgetSpent",
    "RenderError",
    "Renderer",
    "content_key",
    "data_fields",
]


class RenderError(Exception):
    """A template has no text for a channel kind, or does not render with the notice's data."""


class RenderBudgetSpent(InvalidInput):
    """The renderings of one request together went past its budget (``template_sandbox.RenderBudget``): the
    whole request is refused (422), so this is no RenderError, which callers pass over to show the other texts.
    ``where`` names the source that was rendering, ``loc`` the field to blame (``template`` unless told)."""

    def __init__(self, where: str, reason: str, loc: str = "template") -> None:
        super().__init__(f"{loc}: {where}: {reason}", [FieldError(loc, f"{where}: {reason}", "render_budget")])
        self.where, self.reason = where, reason

    def at(self, loc: str) -> RenderBudgetSpent:
        return RenderBudgetSpent(self.where, self.reason, loc)


def content_key(kind: str, language: str) -> str:
    """The key of a stored rendering: the kind for the fallback language, ``kind:language`` for another."""
    return kind if language == FALLBACK_LANGUAGE else f"{kind}:{language}"


def sandbox(*, html: bool) -> BoundedSandbox:
    """The environment staff-written sources run in: sandboxed and metered (``template_sandbox``: rendered
    through ``render_bounded``), strict, autoescaped when ``html``."""
    return BoundedSandbox(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=False)


class Renderer:
    def __init__(self, public_url: str = "") -> None:
        self.public_url = public_url
        self.text_env = sandbox(html=False)
        self.html_env = sandbox(html=True)
        self._frame = self.text_env.from_string(PRINTOUT_FRAME.read_text(encoding="utf-8"))
        # compiled templates found by what alone decides them, the environment (HTML or text) and the source: a
        # name and version may be another template's in another database of the same process, or a draft's (every
        # unsaved draft reads as version 1). Bounded, as drafts being previewed each bring a source of their own
        self._compiled = functools.lru_cache(maxsize=COMPILED_KEPT)(self._compile)

    def context(self, notice: Mapping[str, Any], department_name: str, *, issued_at: str = "") -> dict[str, Any]:
        data = dict(notice.get("data") or {})
        fixed = {
            "title": notice["title"],
            "body": notice.get("body") or "",
            "severity": notice["severity"],
            "severity_label": SEVERITY_LABELS[FALLBACK_LANGUAGE].get(notice["severity"], notice["severity"]),
            "topic": notice["topic"],
            "department": notice["department"],
            "department_name": department_name,
            "notice_id": notice.get("id"),
            "public_url": self.public_url,
            "issued_at": issued_at,
            "language": FALLBACK_LANGUAGE,
            "data": data,
        }
        return {**data, **fixed}

    def render(
        self, version: TemplateVersion, kind: str, context: Mapping[str, Any], language: str | None = None
    ) -> dict[str, str | None]:
        """{"subject", "text", "html"} of one channel kind in the language a resident reading ``language``
        gets (``TemplateVersion.language_for``); RenderError names the template, language and slot at fault."""
        chosen = version.language_for(kind, language)
        if chosen is None:
            raise RenderError(f"template {version.name} has no text for {kind} ({kind} or default)")
        labels = SEVERITY_LABELS.get(chosen, SEVERITY_LABELS[FALLBACK_LANGUAGE])
        local = {**context, "language": chosen, "severity_label": labels.get(context["severity"], context["severity"])}
        text = self._run(version, chosen, version.slot_for(kind, chosen), local).strip()
        if kind == "bulletin" and "bulletin" not in version.texts[chosen]:
            try:
                text = render_bounded(self._frame, {**local, "body": text}).strip()
            except RequestBudgetSpent as exc:
                raise RenderBudgetSpent("the printout frame", str(exc)) from None
        html_slot = f"{kind}_html"
        html = self._run(version, chosen, html_slot, local) if html_slot in version.texts[chosen] else None
        return {"subject": str(context["title"]), "text": text, "html": html}

    def problems(self, version: TemplateVersion, kinds: Iterable[str], context: Mapping[str, Any]) -> list[FieldError]:
        """Why a notice would not render with this version: a declared field its ``data`` lacks
        (``data.<field>``), a kind without a text, or the template's own error in any of its languages;
        empty when every kind renders in every language."""
        data = context.get("data") or {}
        found = [
            FieldError(f"data.{field.name}", f"template {version.name} declares {field.name}; data has no {field.name}")
            for field in version.fields
            if field.name not in data
        ]
        for kind in kinds:
            languages = [lang for lang in version.languages if version.language_for(kind, lang) == lang]
            if not languages:
                found.append(
                    FieldError("template", f"template {version.name} has no text for {kind} ({kind} or default)")
                )
            for language in languages:
                try:
                    self.render(version, kind, context, language)
                except RenderError as exc:
                    missing = self.missing_fields(version, kind, language, context)
                    found.extend(
                        [FieldError(f"data.{f}", f"template {version.name} uses it; data has no {f}") for f in missing]
                        or [FieldError("template", str(exc))]
                    )
        first: dict[str, FieldError] = {}
        for error in found:  # one error per data field (the declaration's), every other error once
            first.setdefault(error.loc if error.loc.startswith("data.") else repr(error), error)
        return list(first.values())

    def missing_fields(
        self, version: TemplateVersion, kind: str, language: str, context: Mapping[str, Any]
    ) -> list[str]:
        """Fields the sources of ``kind`` read (``{{ field }}`` or ``{{ data.field }}``) that ``context`` lacks."""
        data = context.get("data") or {}
        missing: list[str] = []
        for slot in (version.slot_for(kind, language), f"{kind}_html"):
            source = version.texts[language].get(slot)
            if source is None:
                continue
            try:
                tree = self.text_env.parse(source)
            except TemplateError:
                continue
            missing += sorted(field for field in meta.find_undeclared_variables(tree) if field not in context)
            missing += sorted(field for field in data_fields(tree) if field not in data)
        return list(dict.fromkeys(missing))

    def render_slot(self, version: TemplateVersion, language: str, slot: str, context: Mapping[str, Any]) -> str:
        """One slot's source rendered as it stands (for checks and previews): HTML slots autoescaped."""
        labels = SEVERITY_LABELS.get(language, SEVERITY_LABELS[FALLBACK_LANGUAGE])
        local = {
            **context,
            "language": language,
            "severity_label": labels.get(context["severity"], context["severity"]),
        }
        return self._run(version, language, slot, local).strip()

    def _compile(self, html: bool, source: str) -> Template:
        return (self.html_env if html else self.text_env).from_string(source)

    def _run(self, version: TemplateVersion, language: str, slot: str, context: Mapping[str, Any]) -> str:
        try:
            template = self._compiled(slot in HTML_SLOTS, version.texts[language][slot])
            return render_bounded(template, context)
        except RequestBudgetSpent as exc:
            where = f"template {version.name} v{version.version} {language}/{slot}"
            raise RenderBudgetSpent(where, str(exc)) from None
        except Exception as exc:  # staff-authored template code: any error of it (x // 0 too) is its failure
            detail = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
            raise RenderError(f"template {version.name} v{version.version} {language}/{slot}: {detail}") from exc


def data_fields(tree: nodes.Template) -> set[str]:
    """The keys read from ``data`` by name: ``data.field`` and ``data["field"]``."""
    fields: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "data":
            fields.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "data" and isinstance(item.arg, nodes.Const):
            fields.add(str(item.arg.value))
    return fields
