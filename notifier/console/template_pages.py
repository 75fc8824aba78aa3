"""Templates in the console: the list, one template's editor with its versions and a preview with the samples.

    GET  /console/templates                  every template in its latest version
    GET  /console/templates/new              an empty editor (approvers and admins)
    POST /console/templates/new              preview, or create version 1
    GET  /console/templates/{name}           the editor with the latest version (``?version=N``: that one,
                                             read only), the versions, the preview rendered with the samples
    POST /console/templates/{name}           preview the edited draft, or save it as the next version

Saving goes through ``engine.template_library`` as ``PUT /api/v1/templates/{name}`` does: the same checks
(each problem shown under its text box), the same rule of who may edit. The console edits the Chinese and
English texts; a version's other languages (written through the API) are carried over unchanged.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notifier.api.notices import notice_renderer
from notifier.console.framework import Console, NavItem, page, redirect
from notifier.domain.enums import Role
from notifier.domain.errors import Forbidden, InvalidInput, NotFound
from notifier.domain.templates import (
    HTML_SLOTS,
    RESERVED_TEMPLATE_NAME,
    TEXT_SLOTS,
    TemplateDraft,
    TemplateIn,
    TemplateVersion,
    reserved_template_name,
    unsaved_version,
)
from notifier.domain.text import ascii_digits
from notifier.engine.render_threads import rendered
from notifier.engine.template_checks import rendered_samples, sample_context
from notifier.engine.template_library import EDITOR_ROLES, check_draft, check_editor, create_template, save_template

LIST_PATH = "/console/templates"
NEW_PATH = f"{LIST_PATH}/{RESERVED_TEMPLATE_NAME}"  # why no template may have that name
LANGUAGES = ("zh", "en")
SLOTS = (*TEXT_SLOTS, *HTML_SLOTS)
SLOT_LABELS = {
    "default": ("默认正文（没有专用正文的渠道）", "Default text (channels without their own)"),
    "sms": ("短信", "SMS"),
    "wechat": ("微信公众号", "WeChat official account"),
    "wecom": ("企业微信", "WeCom"),
    "email": ("邮件正文", "E-mail text"),
    "bot": ("群机器人", "Group bots"),
    "bulletin": ("公告栏打印", "Notice-board printout"),
    "feed": ("公开订阅源", "Public feed"),
    "email_html": ("邮件 HTML（自动转义）", "E-mail HTML (autoescaped)"),
}
SOURCE_LIMIT = 20_001  # one more than a source may hold, so that too long is refused rather than cut


def template_path(name: str) -> str:
    return f"{LIST_PATH}/{name}"


def _slot_key(language: str, slot: str) -> str:
    return f"texts.{language}.{slot}"


@page()
async def template_list(request: web.Request, console: Console) -> web.StreamResponse:
    items, _ = await console.store.list_templates(None, 500)
    may_create = console.staff.role in EDITOR_ROLES
    return console.render("templates.html", items=items, may_create=may_create)


def _form_state(version: TemplateVersion | None) -> dict[str, Any]:
    """What the editor's boxes hold for a stored version (empty for a new template)."""
    if version is None:
        return {"name": "", "description": "", "fields": "", "texts": {}}
    fields = "\n".join(f"{f.name} | {f.label} | {f.sample}" for f in version.fields)
    texts = {_slot_key(lang, slot): source for lang, slots in version.texts.items() for slot, source in slots.items()}
    return {"name": version.name, "description": version.description, "fields": fields, "texts": texts}


def _parse_fields(text: str) -> tuple[list[dict[str, str]], str | None]:
    """``name | label | sample`` per line; the problem with the first bad line, if any."""
    fields = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|", 2)]
        if len(parts) != 3:
            return [], f"line {number}: write name | label | sample"
        fields.append({"name": parts[0], "label": parts[1], "sample": parts[2]})
    return fields, None


def _posted(console: Console, base: TemplateVersion | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the form as posted, the draft it makes, problems of the form itself by box)."""
    texts_form = {
        _slot_key(lang, slot): console.field(_slot_key(lang, slot), SOURCE_LIMIT)
        for lang in LANGUAGES
        for slot in SLOTS
    }
    state: dict[str, Any] = {
        "name": console.field("name", 100).strip(),
        "description": console.field("description", 1001),
        "fields": console.field("fields", 60_000),
        "texts": texts_form,
    }
    fields, problem = _parse_fields(state["fields"])
    errors = {"fields": problem} if problem else {}
    texts: dict[str, dict[str, str]] = {
        lang: dict(slots) for lang, slots in (base.texts.items() if base else []) if lang not in LANGUAGES
    }
    for lang in LANGUAGES:
        slots = {slot: texts_form[_slot_key(lang, slot)] for slot in SLOTS if texts_form[_slot_key(lang, slot)].strip()}
        if slots:
            texts[lang] = slots
    draft = {"description": state["description"], "fields": fields, "texts": texts}
    return state, draft, errors


def _errors_by_box(problems: list[tuple[str, str]]) -> dict[str, str]:
    """Problems keyed by the box they belong to: ``texts.<lang>.<slot>``, ``fields``, ``description``, ``name``,
    or ``texts`` for one about the texts as a whole."""
    boxes: dict[str, str] = {}
    for loc, message in problems:
        parts = loc.split(".")
        if parts[0] == "texts" and len(parts) >= 3 and parts[1] in LANGUAGES and parts[2] in SLOTS:
            box = ".".join(parts[:3])
        elif parts[0] in ("fields", "description", "name"):
            box = parts[0]
        else:
            box = "texts"
        boxes[box] = f"{boxes[box]}；{message}" if box in boxes else message
    return boxes


def _validated(name: str | None, draft: dict[str, Any]) -> tuple[TemplateDraft | None, dict[str, str]]:
    """The draft, checked with ``name`` as a new template's (None: a stored template's next version)."""
    try:
        if name is not None:
            TemplateIn.model_validate({"name": name, **draft})
        return TemplateDraft.model_validate(draft), {}
    except ValidationError as exc:
        problems = [
            (".".join(str(part) for part in error["loc"]), str(error["msg"]).removeprefix("Value error, "))
            for error in exc.errors()
        ]
        return None, _errors_by_box(problems)


async def _editor(
    console: Console,
    version: TemplateVersion | None,
    *,
    state: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    preview: dict[str, dict[str, str]] | None = None,
    status: int = 200,
    read_only: bool = False,
) -> web.Response:
    staff = console.staff
    may_edit = True
    if version is not None:
        try:
            check_editor(staff.as_key(), version.name, version.department)
        except Forbidden:
            may_edit = False
    else:
        may_edit = staff.role in EDITOR_ROLES
    versions: list[TemplateVersion] = []
    if version is not None:
        versions, _ = await console.store.list_template_versions(version.name, None, 100)
    if preview is None and version is not None:
        preview = await rendered(rendered_samples, version, notice_renderer(console.request))
    sample = sample_context(version, notice_renderer(console.request)) if version is not None else {}
    return console.render(
        "template.html",
        status=status,
        version=version,
        form=state or _form_state(version),
        errors=errors or {},
        preview=preview or {},
        versions=versions,
        may_edit=may_edit and not read_only,
        read_only=read_only,
        languages=LANGUAGES,
        slots=SLOTS,
        slot_labels=SLOT_LABELS,
        sample_title=sample.get("title", ""),
    )


@page()
async def template_page(request: web.Request, console: Console) -> web.StreamResponse:
    name = request.match_info["name"]
    wanted = request.query.get("version", "")
    number = int(wanted) if ascii_digits(wanted) and len(wanted) < 10 else None
    latest = await console.store.template_version(name)
    version = latest if number is None else await console.store.template_version(name, number)
    if latest is None or version is None:
        raise NotFound(f"no template {name}" if number is None else f"no version {wanted} of template {name}")
    read_only = version.version != latest.version
    if request.method == "POST":
        return await _submit(console, latest)
    return await _editor(console, version, read_only=read_only)


@page(roles=(Role.APPROVER,))
async def new_template_page(request: web.Request, console: Console) -> web.StreamResponse:
    if request.method == "GET":
        return await _editor(console, None)
    return await _submit(console, None)


async def _submit(console: Console, base: TemplateVersion | None) -> web.Response:
    """Preview (``action=preview``) or save the posted draft; on a problem the editor again, each under its box."""
    state, raw, errors = _posted(console, base)
    name = base.name if base else state["name"]
    if base is not None:
        state["name"] = base.name
    draft, invalid = _validated(None if base else name, raw)
    errors.update(invalid)
    if base is None and reserved_template_name(name):
        t = console.t
        errors["name"] = t(
            f"“{RESERVED_TEMPLATE_NAME}”是新建模板页面的地址，不能用作模板名",
            f"“{RESERVED_TEMPLATE_NAME}” is the address of the new-template page and cannot be a template's name",
        )
    renderer = notice_renderer(console.request)
    if draft is None or errors:
        return await _editor(console, base, state=state, errors=errors, status=422)
    key, actor = console.staff.as_key(), console.staff.actor
    try:
        if console.field("action", 20) == "preview":
            await check_draft(name, draft, renderer)
            candidate = TemplateIn(name=name, **draft.model_dump())
            preview = await rendered(rendered_samples, unsaved_version(candidate, created_by=actor), renderer)
            return await _editor(console, base, state=state, preview=preview)
        if base is None:
            saved = await create_template(
                console.store, TemplateIn(name=name, **draft.model_dump()), key, actor, renderer
            )
        else:
            saved = await save_template(console.store, name, draft, key, actor, renderer)
    except InvalidInput as exc:
        problems = [(error.loc, error.msg) for error in exc.errors]
        return await _editor(console, base, state=state, errors=_errors_by_box(problems), status=422)
    raise redirect(template_path(saved.name))


NAV_ITEMS = [NavItem(LIST_PATH, "模板", "Templates")]
ROUTES = [
    ("GET", LIST_PATH, template_list),
    ("GET", NEW_PATH, new_template_page),
    ("POST", NEW_PATH, new_template_page),
    ("GET", LIST_PATH + "/{name}", template_page),
    ("POST", LIST_PATH + "/{name}", template_page),
]
