"""A notice's text per channel kind: the work the fan-out and the previews hand to a render thread
(``render_threads.rendered``), so the three render a notice the same way."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from notifier.domain.templates import TemplateVersion
from notifier.engine.personal import bind_row
from notifier.engine.render import Renderer, content_key


def render_kinds(
    renderer: Renderer,
    version: TemplateVersion,
    kinds: Sequence[str],
    context: dict[str, Any],
    columns: Sequence[str] | None = None,
    translated: Collection[str] = (),
) -> dict[str, dict[str, str | None]]:
    """Each kind in ``kinds`` in the fallback language, under the kind; each kind in ``translated`` also in
    every other language the template has a text of it in, under ``content_key(kind, language)``. With
    ``columns`` (a roster notice), ``row`` is bound to markers first (``personal.bind_row``)."""
    if columns is not None:
        context = bind_row(renderer, context, columns)
    contents = {}
    for kind in kinds:
        contents[kind] = renderer.render(version, kind, context)
        if kind not in translated:
            continue
        for language in version.languages[1:]:
            if version.language_for(kind, language) == language:
                contents[content_key(kind, language)] = renderer.render(version, kind, context, language)
    return contents
