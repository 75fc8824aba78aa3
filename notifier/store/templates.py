"""Templates and their versions: each save adds a version, none is ever changed (migration 013).

The built-in templates (``templates/``) are seeded as version 1 the first time a Store reads the library
(``seed_builtin_templates``, idempotent and safe when several processes race: a name already present is
left alone, so a template staff have edited is never overwritten by a later release's file).
"""

from __future__ import annotations

import json
from typing import Any

from notifier.domain.builtin_templates import BUILTIN_ACTOR, builtin_templates
from notifier.domain.errors import Conflict, NotFound
from notifier.domain.templates import TemplateDraft, TemplateIn, TemplateVersion
from notifier.store.audit import AuditRepository
from notifier.store.common import decode_cursor, dumps, now_iso, page
from notifier.store.database import Database, Row


def _version(row: Row) -> TemplateVersion:
    return TemplateVersion(
        **{k: row[k] for k in ("name", "department", "version", "description", "created_by", "created_at")},
        fields=json.loads(row["fields"]),
        texts=json.loads(row["texts"]),
    )


def _version_params(draft: TemplateDraft) -> dict[str, Any]:
    return {
        "description": draft.description,
        "fields": dumps([field.model_dump() for field in draft.fields]),
        "texts": dumps(draft.texts),
    }


class TemplateRepository(AuditRepository):
    db: Database
    _templates_seeded: bool = False

    async def seed_builtin_templates(self) -> list[str]:
        """Store each shipped template whose name is not taken yet as its version 1; the names stored."""
        seeded = []
        async with self.db.transaction():
            for template in builtin_templates():
                now = now_iso()
                row = await self.db.fetch_one(
                    "insert_template", {"name": template.name, "department": None, "now": now}
                )
                if row is None:
                    continue
                await self.db.execute(
                    "insert_template_version",
                    {
                        "template_id": row["id"],
                        "version": 1,
                        **_version_params(template),
                        "created_by": BUILTIN_ACTOR,
                        "now": now,
                    },
                )
                seeded.append(template.name)
        self._templates_seeded = True
        return seeded

    async def _templates_ready(self) -> None:
        if not self._templates_seeded:
            await self.seed_builtin_templates()

    async def template_version(self, name: str, version: int | None = None) -> TemplateVersion | None:
        """A version of a template (the latest when ``version`` is None); None when there is no such version."""
        await self._templates_ready()
        row = await self.db.fetch_one("get_template_version", {"name": name, "version": version})
        return None if row is None else _version(row)

    async def template_owner(self, name: str) -> tuple[bool, str | None]:
        """(whether the template exists, the department owning it: None for a built-in one)."""
        await self._templates_ready()
        row = await self.db.fetch_one("get_template_head", {"name": name})
        return (False, None) if row is None else (True, row["department"])

    async def list_templates(self, cursor: str | None, limit: int) -> tuple[list[TemplateVersion], str | None]:
        """The latest version of every template, in the order they were created."""
        await self._templates_ready()
        rows = await self.db.fetch_all("list_templates", {"after": decode_cursor(cursor) or 0, "limit": limit + 1})
        items, next_cursor = page(rows, limit)
        return [_version(row) for row in items], next_cursor

    async def list_template_versions(
        self, name: str, cursor: str | None, limit: int
    ) -> tuple[list[TemplateVersion], str | None]:
        """A template's versions, newest first; NotFound for an unknown template."""
        if not (await self.template_owner(name))[0]:
            raise NotFound(f"no template {name}")
        before = decode_cursor(cursor) or 2**62
        rows = await self.db.fetch_all("list_template_versions", {"name": name, "before": before, "limit": limit + 1})
        items, next_cursor = page(rows, limit)
        return [_version(row) for row in items], next_cursor

    async def create_template(self, template: TemplateIn, *, department: str, actor: str) -> TemplateVersion:
        """Store a new template owned by ``department`` as version 1; Conflict when the name is taken."""
        await self._templates_ready()
        now = now_iso()
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "insert_template", {"name": template.name, "department": department, "now": now}
            )
            if row is None:
                raise Conflict(f"a template named {template.name} exists; a PUT to it saves a new version")
            await self.db.execute(
                "insert_template_version",
                {"template_id": row["id"], "version": 1, **_version_params(template), "created_by": actor, "now": now},
            )
            await self.audit(actor, "template.create", "template", template.name, {"version": 1})
        created = await self.template_version(template.name, 1)
        assert created is not None
        return created

    async def save_template_version(self, name: str, draft: TemplateDraft, *, actor: str) -> TemplateVersion:
        """Add the next version of a template; NotFound for an unknown one."""
        await self._templates_ready()
        now = now_iso()
        async with self.db.transaction():
            head = await self.db.fetch_one("get_template_head", {"name": name})
            if head is None:
                raise NotFound(f"no template {name}; POST /api/v1/templates creates one")
            version = int(await self.db.fetch_value("bump_template", {"id": head["id"], "now": now}))
            await self.db.execute(
                "insert_template_version",
                {
                    "template_id": head["id"],
                    "version": version,
                    **_version_params(draft),
                    "created_by": actor,
                    "now": now,
                },
            )
            await self.audit(actor, "template.update", "template", name, {"version": version})
        saved = await self.template_version(name, version)
        assert saved is not None
        return saved
