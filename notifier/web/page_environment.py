"""The jinja2 environment of the service's own page templates (the residents' pages, the public pages, the
console): undefined names are errors, everything is autoescaped, block tags leave no blank lines."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


@cache
def page_environment(folder: Path) -> Environment:
    """The environment of the templates in ``folder``, made once per folder."""
    return Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
