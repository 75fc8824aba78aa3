"""Templates as staff write them: per language, one text per channel kind, with declared fields.

A template is a name and a list of versions; each save is a new version and nothing is edited in place,
so a notice that recorded version 3 renders with version 3 for ever. A version holds ``texts``: per
language code (``zh`` always, ``en`` and others optional) the sources of its slots: ``default`` (the
text of a channel kind without its own slot), one slot per channel kind (``sms``, ``wechat``...) and
``email_html`` (the HTML part of an e-mail, autoescaped). ``fields`` are what a notice's ``data`` must
carry; each field's ``sample`` is used to check the template when it is saved and for previews.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from notifier.domain.text import MultiLineText, SingleLineText, multi_line

FALLBACK_LANGUAGE = "zh"
TEXT_SLOTS = ("default", "sms", "wechat", "wecom", "email", "bot", "bulletin", "feed")
HTML_SLOTS = ("email_html",)
TemplateSlot = Literal["default", "sms", "wechat", "wecom", "email", "bot", "bulletin", "feed", "email_html"]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="an ISO 639 language code, e.g. zh or en")]
FieldName = Annotated[
    str, Field(pattern=r"^[a-z_][a-z0-9_]{0,39}$", description="what the template writes as {{ name }}")
]
TemplateSource = Annotated[str, AfterValidator(multi_line), Field(min_length=1, max_length=20000)]
# /console/templates/new is the console's page for a new template: a template of that name could never be opened
RESERVED_TEMPLATE_NAME = "new"


def reserved_template_name(name: str) -> bool:
    """Whether ``name`` is the reserved one, in any case or width (``NEW``, ``ｎｅｗ``)."""
    return unicodedata.normalize("NFKC", name).casefold() == RESERVED_TEMPLATE_NAME


def _not_reserved(name: str) -> str:
    if reserved_template_name(name):
        raise ValueError(f"{RESERVED_TEMPLATE_NAME} is reserved: it is the address of the console's new-template page")
    return name


TemplateName = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9-]{1,47}$", description=f"lower-case slug, not {RESERVED_TEMPLATE_NAME}"),
    AfterValidator(_not_reserved),
]


class TemplateField(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: FieldName
    label: SingleLineText = Field("", max_length=100, description="what the console shows next to the field")
    sample: MultiLineText = Field(
        min_length=1, max_length=1000, description="a typical value: used to check the template and to preview it"
    )


class TemplateDraft(BaseModel):
    """A template's content as one save sends it (``PUT /templates/{name}``)."""

    model_config = ConfigDict(extra="forbid")  # the sources keep their whitespace

    description: MultiLineText = Field("", max_length=1000)
    fields: list[TemplateField] = Field([], max_length=50)
    texts: dict[Language, dict[TemplateSlot, TemplateSource]] = Field(
        min_length=1,
        max_length=10,
        description="per language, the source of each slot; zh is required (the fallback language)",
    )

    @field_validator("texts")
    @classmethod
    def _complete(cls, texts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        if FALLBACK_LANGUAGE not in texts:
            raise ValueError(f"texts needs {FALLBACK_LANGUAGE}: the language every resident falls back to")
        for language, slots in texts.items():
            if not any(slot in TEXT_SLOTS for slot in slots):
                raise ValueError(f"texts.{language} needs at least one text slot (default or a channel kind)")
        return texts

    @field_validator("fields")
    @classmethod
    def _unique(cls, fields: list[TemplateField]) -> list[TemplateField]:
        names = [field.name for field in fields]
        if len(set(names)) != len(names):
            raise ValueError("fields has a name twice")
        return fields


class TemplateIn(TemplateDraft):
    """A new template (``POST /templates``): its name, then the content of its version 1."""

    name: TemplateName


class TemplateVersion(BaseModel):
    """One saved version of a template, as stored and as the API returns it."""

    name: str
    version: int = Field(description="1 for the first save, one more for each save after it")
    department: str | None = Field(description="the department that owns it; null for a built-in template")
    description: str
    fields: list[TemplateField]
    texts: dict[str, dict[str, str]]
    created_at: datetime
    created_by: str = Field(description="who saved this version, e.g. apikey:12 or builtin")

    @property
    def languages(self) -> list[str]:
        """The fallback language first, then the others in code order."""
        return sorted(self.texts, key=lambda language: (language != FALLBACK_LANGUAGE, language))

    def language_for(self, kind: str, wanted: str | None) -> str | None:
        """The language a resident who reads ``wanted`` gets for ``kind``: theirs (or its primary subtag) when the
        template has a text for the kind in it, else the fallback language; None when no language has one."""
        candidates = [wanted, wanted.split("-")[0]] if wanted else []
        for language in [*candidates, FALLBACK_LANGUAGE]:
            slots = self.texts.get(language or "")
            if slots and (kind in slots or "default" in slots):
                return language
        return None

    def slot_for(self, kind: str, language: str) -> str:
        """The slot whose source renders ``kind`` in ``language``: the kind's own, else ``default``."""
        return kind if kind in self.texts[language] else "default"


def unsaved_version(template: TemplateIn, *, created_by: str, department: str | None = None) -> TemplateVersion:
    """``template`` as its version 1 would read once stored: for previews and checks before any save."""
    return TemplateVersion(
        name=template.name,
        version=1,
        department=department,
        description=template.description,
        fields=template.fields,
        texts=template.texts,
        created_at=datetime.now(UTC),
        created_by=created_by,
    )
