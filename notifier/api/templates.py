"""Templates: list, read, create, save a new version, list the versions (see engine.template_library)."""

from __future__ import annotations

import re

from aiohttp import web

from notifier.api.auth import actor, require
from notifier.api.catalog import PageQuery
from notifier.api.keys import STORE
from notifier.api.notices import notice_renderer
from notifier.api.routing import Route, json_response, page_response, path_int, read_body, read_query
from notifier.domain.errors import FieldError, InvalidInput, NotFound
from notifier.domain.templates import TemplateDraft, TemplateIn, TemplateVersion
from notifier.engine.template_library import EDITOR_ROLES, save_template
from notifier.engine.template_library import create_template as create_new_template

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,47}$"
NAME_PARAM = {"name": {"type": "string", "pattern": NAME_PATTERN}}
SAVE_ERRORS = {
    403: "the key's role may not edit templates, or the template belongs to another department (built-in: admins)",
}


def path_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not re.fullmatch(NAME_PATTERN, name, re.ASCII):
        raise InvalidInput("not a template name", [FieldError("path.name", "a lower-case slug of 2 to 48 characters")])
    return name


async def list_templates(request: web.Request) -> web.Response:
    await require(request)
    q = read_query(request, PageQuery)
    return page_response(*await request.app[STORE].list_templates(q.cursor, q.limit))


async def get_template(request: web.Request) -> web.Response:
    await require(request)
    name = path_name(request)
    found = await request.app[STORE].template_version(name)
    if found is None:
        raise NotFound(f"no template {name}")
    return json_response(found)


async def create_template(request: web.Request) -> web.Response:
    key = await require(request, *EDITOR_ROLES)  # the role before the body: a viewer hears 403, whatever it sent
    template = await read_body(request, TemplateIn)
    created = await create_new_template(request.app[STORE], template, key, actor(key), notice_renderer(request))
    return json_response(created, 201)


async def put_template(request: web.Request) -> web.Response:
    key = await require(request, *EDITOR_ROLES)
    name = path_name(request)
    draft = await read_body(request, TemplateDraft)
    saved = await save_template(request.app[STORE], name, draft, key, actor(key), notice_renderer(request))
    return json_response(saved)


async def list_template_versions(request: web.Request) -> web.Response:
    await require(request)
    q = read_query(request, PageQuery)
    return page_response(*await request.app[STORE].list_template_versions(path_name(request), q.cursor, q.limit))


async def get_template_version(request: web.Request) -> web.Response:
    await require(request)
    name = path_name(request)
    version = path_int(request, "version")
    found = await request.app[STORE].template_version(name, version)
    if found is None:
        raise NotFound(f"no version {version} of template {name}")
    return json_response(found)


ROUTES = [
    Route(
        "GET",
        "/api/v1/templates",
        list_templates,
        "Templates, each in its latest version",
        "templates",
        query=PageQuery,
        response=TemplateVersion,
        response_list=True,
    ),
    Route(
        "POST",
        "/api/v1/templates",
        create_template,
        "Create a template (version 1), owned by the key's department; approvers and admins",
        "templates",
        body=TemplateIn,
        response=TemplateVersion,
        status=201,
        roles=("approver", "admin"),
        extra_responses={
            **SAVE_ERRORS,
            409: "a template with this name exists",
            422: "invalid body, or a source that does not parse, reads an undeclared field, fails with the samples, "
            "or makes an SMS too long (each error names texts.<language>.<slot> and the line)",
        },
    ),
    Route(
        "GET",
        "/api/v1/templates/{name}",
        get_template,
        "A template in its latest version",
        "templates",
        response=TemplateVersion,
        path_params=NAME_PARAM,
        extra_responses={404: "no template with this name"},
    ),
    Route(
        "PUT",
        "/api/v1/templates/{name}",
        put_template,
        "Save a new version of a template; notices created before keep the version they recorded",
        "templates",
        body=TemplateDraft,
        response=TemplateVersion,
        roles=("approver", "admin"),
        path_params=NAME_PARAM,
        extra_responses={
            **SAVE_ERRORS,
            404: "no template with this name",
            422: "invalid body, or a source that does not parse, reads an undeclared field, fails with the samples, "
            "or makes an SMS too long (each error names texts.<language>.<slot> and the line)",
        },
    ),
    Route(
        "GET",
        "/api/v1/templates/{name}/versions",
        list_template_versions,
        "Every version of a template, newest first",
        "templates",
        query=PageQuery,
        response=TemplateVersion,
        response_list=True,
        path_params=NAME_PARAM,
        extra_responses={404: "no template with this name"},
    ),
    Route(
        "GET",
        "/api/v1/templates/{name}/versions/{version}",
        get_template_version,
        "One version of a template",
        "templates",
        response=TemplateVersion,
        path_params=NAME_PARAM,
        extra_responses={404: "no such version"},
    ),
]
