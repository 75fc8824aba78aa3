"""Saving templates, as the API and the console both do it: who may, and the checks a save must pass.

Who may edit (``check_editor``): a template created through the API or the console belongs to the creator's
department and is edited by that department's approvers and admins; a built-in one (no department) is edited
by admins only, since every department's notices use it. Issuers and viewers read templates, never write them.
Every key reads every template: templates hold no personal data and any department may issue with any.
"""

from __future__ import annotations

from notifier.domain.enums import Role
from notifier.domain.errors import Forbidden, InvalidInput, NotFound
from notifier.domain.models import ApiKeyInfo
from notifier.domain.templates import TemplateDraft, TemplateIn, TemplateVersion, unsaved_version
from notifier.engine.render import Renderer
from notifier.engine.render_threads import rendered
from notifier.engine.template_checks import check_template
from notifier.store import Store

EDITOR_ROLES = (Role.APPROVER, Role.ADMIN)


def check_editor(key: ApiKeyInfo, name: str, owner: str | None) -> None:
    """Forbidden unless ``key`` may save a version of the template ``name`` owned by ``owner``."""
    if key.role not in EDITOR_ROLES:
        raise Forbidden(f"templates are edited by approvers and admins; the key has {key.role.value}")
    if owner is None and key.role is not Role.ADMIN:
        raise Forbidden(f"{name} is a built-in template every department uses: only admins edit it")
    if owner is not None and owner != key.department:
        raise Forbidden(f"template {name} belongs to department {owner}")


async def check_draft(name: str, draft: TemplateDraft, renderer: Renderer) -> None:
    """InvalidInput listing every problem of the draft (``texts.<language>.<slot>``, with the line); the
    renderings run in a render thread."""
    template = TemplateIn(name=name, **draft.model_dump(exclude={"name"}))
    problems = await rendered(check_template, unsaved_version(template, created_by=""), renderer)
    if problems:
        raise InvalidInput(f"the template cannot be saved: {problems[0].loc}: {problems[0].msg}", problems)


async def create_template(
    store: Store, template: TemplateIn, key: ApiKeyInfo, actor: str, renderer: Renderer
) -> TemplateVersion:
    """Version 1 of a new template owned by the key's department; Conflict when the name is taken."""
    check_editor(key, template.name, key.department)
    await check_draft(template.name, template, renderer)
    return await store.create_template(template, department=key.department, actor=actor)


async def save_template(
    store: Store, name: str, draft: TemplateDraft, key: ApiKeyInfo, actor: str, renderer: Renderer
) -> TemplateVersion:
    """The next version of an existing template; NotFound, Forbidden or InvalidInput otherwise."""
    exists, owner = await store.template_owner(name)
    if not exists:
        raise NotFound(f"no template {name}")
    check_editor(key, name, owner)
    await check_draft(name, draft, renderer)
    return await store.save_template_version(name, draft, actor=actor)
