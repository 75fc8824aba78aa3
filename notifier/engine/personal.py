"""Personal texts from a roster: each recipient's own row in ``{{ row.<column> }}``, without rendering a
template per recipient.

A notice targeting a roster is rendered once per channel kind, as every notice is, with ``row`` bound to
*markers*: each column's value is a private-use character pair around the column's position
(``\\ue000 3 \\ue001``). That rendering is stored like any other (``rendered_messages``), and a message is
completed when it is sent by putting the recipient's cells in place of the markers (``personalise``), HTML
escaped in an HTML part. The roster's rows cannot change (a roster is replaced, never edited) and are kept
until every notice using them has ended, so a retry sends the identical text, and the fan-out costs what a
plain notice's costs.

For that to be exact, a template may only print a row's cell (``{{ row.amount }}``, ``{{ row["金额(元)"] }}``):
a filter, test, comparison or condition on a cell would act on the marker, not on the value, so such a use
is refused when the notice is created (``row_problems``), as is a column the roster does not have.

A notice's free-text ``body`` is a sandboxed template only when the notice targets a roster; otherwise it
is plain text as always, and a ``{{ row.… }}`` in it is refused (there is no row to fill it).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from notifier.domain.errors import FieldError
from notifier.domain.templates import TemplateVersion
from notifier.engine.render import RenderBudgetSpent, Renderer, RenderError
from notifier.engine.template_sandbox import RequestBudgetSpent, render_bounded

OPEN, CLOSE = "\ue000", "\ue001"
MARKER = re.compile(f"{OPEN}([0-9]+){CLOSE}")
ROW = "row"  # the name a template reads a roster row's cells by
PERSONAL_KEY = "personal"  # in a stored rendering: JSON {"roster": id, "columns": [...]}
ROW_PLACEHOLDER = re.compile(r"{{-?\s*row\b")


class SampleRow(dict[str, str]):
    """``row`` when a template is saved or previewed without a roster: every column reads as its own name."""

    def __missing__(self, column: str) -> str:
        return f"〔{column}〕"


def markers(columns: Sequence[str]) -> dict[str, str]:
    """``row`` as the once-per-notice rendering sees it: every column's marker."""
    return {column: f"{OPEN}{position}{CLOSE}" for position, column in enumerate(columns)}


@lru_cache(maxsize=256)
def personal_meta(personal: str) -> tuple[int, tuple[str, ...]]:
    """(roster id, columns) of a stored rendering's ``personal`` entry (parsed once per rendering)."""
    meta = json.loads(personal)
    return int(meta["roster"]), tuple(meta["columns"])


def personalise(content: Mapping[str, str | None], cells: Mapping[str, str]) -> dict[str, str | None]:
    """One recipient's message from a stored rendering with markers: their cells in place of the markers."""
    personal = content.get(PERSONAL_KEY)
    if not personal:
        return dict(content)
    _, columns = personal_meta(personal)

    def fill(text: str | None, escape: bool) -> str | None:
        if text is None or OPEN not in text:
            return text

        def value(match: re.Match[str]) -> str:
            cell = cells.get(columns[int(match.group(1))], "")
            return html.escape(cell) if escape else cell

        return MARKER.sub(value, text)

    return {
        "subject": fill(content.get("subject"), False),
        "text": fill(content.get("text"), False),
        "html": fill(content.get("html"), True),
    }


def is_template_body(body: str | None) -> bool:
    return bool(body) and any(mark in (body or "") for mark in ("{{", "{%", "{#"))


def row_uses(tree: nodes.Template) -> tuple[set[str], bool]:
    """(columns read from ``row``, whether every use only prints a cell as ``{{ row.x }}`` / ``{{ row["x"] }}``)."""
    printed: set[int] = set()
    for output in tree.find_all(nodes.Output):
        printed.update(id(child) for child in output.nodes)
    columns: set[str] = set()
    simple = True
    reads: set[int] = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "row":
            columns.add(node.attr)
            reads.add(id(node.node))
            simple = simple and id(node) in printed
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == "row":
            reads.add(id(item.node))
            if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
                columns.add(item.arg.value)
                simple = simple and id(item) in printed
            else:
                simple = False
    for name in tree.find_all(nodes.Name):
        if name.name == "row" and id(name) not in reads:
            simple = False  # row itself: iterated, printed whole, passed to a filter
    return columns, simple


def template_sources(version: TemplateVersion, kinds: Iterable[str]) -> dict[str, str]:
    """The sources a notice's channel texts are rendered from, by ``language/slot``, in every language."""
    found: dict[str, str] = {}
    for language in version.languages:
        for kind in kinds:
            if version.language_for(kind, language) != language:
                continue
            for slot in (version.slot_for(kind, language), f"{kind}_html"):
                source = version.texts[language].get(slot)
                if source is not None:
                    found[f"{version.name}:{language}/{slot}"] = source
    return found


def row_problems(
    renderer: Renderer,
    version: TemplateVersion,
    body: str | None,
    kinds: Iterable[str],
    columns: Sequence[str] | None,
) -> list[FieldError]:
    """Why the notice's texts cannot be filled from its roster (``columns``; None when it targets none)."""
    sources = template_sources(version, kinds)
    if body is not None and (columns is not None or ROW_PLACEHOLDER.search(body)):
        sources["body"] = body
    problems: list[FieldError] = []
    for where, source in sources.items():
        loc = "body" if where == "body" else "template"
        try:
            tree = renderer.text_env.parse(source)
        except TemplateSyntaxError as exc:
            problems.append(FieldError(loc, f"{where}: {exc.message}"))
            continue
        used, simple = row_uses(tree)
        if not used and simple:
            continue
        if columns is None:
            problems.append(FieldError(loc, f"{where} uses row fields, but the notice targets no roster"))
            continue
        if not simple:
            problems.append(
                FieldError(
                    loc,
                    f"{where}: a row's cell can only be printed as {{{{ row.<column> }}}}, "
                    "without filters, tests or conditions",
                )
            )
        problems.extend(
            FieldError(f"row.{column}", f"{where} uses it; the roster has no column {column}")
            for column in sorted(used - set(columns))
        )
    return list(dict.fromkeys(problems))


def bind_row(renderer: Renderer, context: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """The context of a roster notice's once-per-notice rendering: ``row`` as markers, and a body with
    placeholders rendered in the sandbox with them; RenderError naming the body when it fails."""
    bound = {**context, "row": markers(columns)}
    body = str(context.get("body") or "")
    if is_template_body(body):
        try:
            bound["body"] = render_bounded(renderer.text_env.from_string(body), bound)
        except RequestBudgetSpent as exc:
            raise RenderBudgetSpent("the notice's body", str(exc), "body") from None
        except Exception as exc:  # staff-authored text: any error of it is its failure
            raise RenderError(f"body: {type(exc).__name__}: {exc}") from exc
    return bound


def tag_personal(
    contents: dict[str, dict[str, str | None]], roster_id: int, columns: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """Stored renderings that say which roster fills their markers."""
    personal = json.dumps({"roster": roster_id, "columns": list(columns)}, ensure_ascii=False)
    return {key: {**content, PERSONAL_KEY: personal} for key, content in contents.items()}
