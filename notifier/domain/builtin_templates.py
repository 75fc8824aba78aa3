"""The templates shipped under ``templates/``: read from the files, seeded into the store as version 1.

Layout of one template ``templates/<name>/``: ``<slot>.txt`` holds the Chinese text of a slot (``default.txt``,
``sms.txt``...), ``email.html`` the Chinese HTML part of an e-mail, ``<language>/`` the same files in another
language (``en/sms.txt``), and ``template.toml`` the description and declared fields::

    description = "..."
    [[fields]]
    name = "level"
    label = "预警级别"
    sample = "橙色"

A folder without any ``.txt`` file (``bulletin/``, the printout layout; ``web/``, the resident pages) is not
a template.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from notifier.domain.templates import FALLBACK_LANGUAGE, TemplateIn, TemplateVersion, unsaved_version

TEMPLATE_ROOT = Path(__file__).resolve().parents[2] / "templates"
BUILTIN_ACTOR = "builtin"


def _slots(folder: Path) -> dict[str, str]:
    texts = {file.stem: file.read_text(encoding="utf-8") for file in sorted(folder.glob("*.txt"))}
    html = folder / "email.html"
    if html.is_file():
        texts["email_html"] = html.read_text(encoding="utf-8")
    return texts


def read_builtin(folder: Path) -> TemplateIn:
    """The template of one folder; ValueError (pydantic's) when its files do not make a valid template."""
    manifest: dict[str, Any] = {}
    if (folder / "template.toml").is_file():
        manifest = tomllib.loads((folder / "template.toml").read_text(encoding="utf-8"))
    texts = {FALLBACK_LANGUAGE: _slots(folder)}
    for sub in sorted(path for path in folder.iterdir() if path.is_dir()):
        if slots := _slots(sub):
            texts[sub.name] = slots
    return TemplateIn.model_validate({"name": folder.name, **manifest, "texts": texts})


def builtin_templates(root: Path = TEMPLATE_ROOT) -> list[TemplateIn]:
    """Every shipped template, by name."""
    folders = sorted(path for path in root.iterdir() if path.is_dir() and any(path.glob("*.txt")))
    return [read_builtin(folder) for folder in folders]


def builtin_version(name: str, root: Path = TEMPLATE_ROOT) -> TemplateVersion:
    """The shipped template ``name`` as it is seeded (version 1), without a store."""
    return unsaved_version(read_builtin(root / name), created_by=BUILTIN_ACTOR)
