"""OpenAPI 3.1 document generated from the route table and the pydantic models.

Every answer an operation can give is listed with its media type: the success, then the problem documents
the route implies (401/403 for keyed routes; 404 and 422 for path ids; 413, 415 and 422 for JSON bodies; 422
for query models; 503 with ``Retry-After`` everywhere, for a database another process holds locked, and on public
routes also for the render threads' share of anonymous pages taken) and those
the route declares itself. Any path answers a method it does not list with a 405
problem document carrying ``Allow`` (RFC 9110 §15.5.6); OpenAPI has no place for undeclared methods, so the
document's description says so.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import notifier
from notifier.api.routing import PATH_ID_DIGITS, Answer, Route

PROBLEM_JSON = "application/problem+json"
_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}, "type": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
PATH_ID = {"type": "integer", "minimum": 1, "maximum": 10**PATH_ID_DIGITS - 1}
_DESCRIPTION = (
    "Multi-channel public-welfare notification service. Errors are application/problem+json (RFC 9457). "
    "A method a path does not list is answered 405 with an Allow header naming the methods it does."
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _answer(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.media:
        schema = answer.schema if answer.schema is not None else {"$ref": "#/components/schemas/Problem"}
        out["content"] = {answer.media: {"schema": dict(schema)}}
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: the model's ``X | None`` loses its null branch."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**options[0], **rest}
    return {k: v for k, v in schema.items() if k != "title"}


def _parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": dict(route.path_params.get(name, PATH_ID))}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        model = schemas[route.query.__name__]
        for attribute, field in route.query.model_fields.items():
            name = field.alias or attribute  # "from" is a keyword in Python: the model names it from_
            param = {"name": name, "in": "query", "required": field.is_required()}
            param["schema"] = _without_null(model["properties"][name])
            if field.description:
                param["description"] = field.description
            params.append(param)
    for extra in route.params:
        param = {"name": extra.name, "in": extra.where, "required": extra.required, "schema": dict(extra.schema)}
        if extra.description:
            param["description"] = extra.description
        params.append(param)
    return params


def _request_body(route: Route) -> dict[str, Any] | None:
    if route.body is not None:
        content = {"application/json": {"schema": _ref(route.body)}}
        content |= {media: {"schema": dict(schema)} for media, schema in route.content.items()}
        return {"required": route.status == 201, "content": content}
    if route.content:
        content = {media: {"schema": dict(schema)} for media, schema in route.content.items()}
        return {"required": route.content_required, "content": content}
    return None


def _success(route: Route) -> dict[str, Any]:
    if route.success is not None:
        out = _answer(route.success)
    elif route.response is None:
        out = {"description": "done"}
    else:
        schema: dict[str, Any] = _ref(route.response)
        if route.response_list:
            schema = {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": schema},
                    "next_cursor": {"type": ["string", "null"]},
                },
                "required": ["items", "next_cursor"],
            }
        out = {"description": "success", "content": {"application/json": {"schema": schema}}}
    for media, alternative in route.success_media.items():
        out.setdefault("content", {})[media] = {"schema": dict(alternative)}
    if route.links:
        out["links"] = {
            link.operation_id: {
                "operationId": link.operation_id,
                "parameters": {"id": "$response.body#/id"},
                **({"description": link.description} if link.description else {}),
            }
            for link in route.links
        }
    return out


DATABASE_LOCKED = Answer("the database is locked by another process; try again after Retry-After seconds")
LOCKED_OR_BUSY = Answer(  # render_threads.rendered_for_public
    "the database is locked by another process, or (a page showing notices' texts) the render threads hold as many "
    "anonymous renderings as they take; try again after Retry-After seconds"
)


def _implied_errors(route: Route) -> dict[int, str | Answer]:
    errors: dict[int, str | Answer] = {503: LOCKED_OR_BUSY if route.public else DATABASE_LOCKED}
    if not route.public:
        errors[401] = "missing, unknown or revoked API key"
        errors[403] = "the key's role or department does not allow this"
    if "{" in route.path:
        errors[404] = "no such resource, or not one the key's department may see"
        errors[422] = "a path parameter is malformed (an id is ASCII digits, at most 18)"
    if route.query is not None:
        errors[422] = "invalid input, with a field-level error list"
    if route.body is not None:
        errors[413] = "the body is larger than the server accepts ([server] max_body_bytes)"
        errors[415] = "the body is not application/json"
        errors[422] = "invalid input, with a field-level error list"
    return errors


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag], "operationId": route.handler.__name__}
    params = _parameters(route, schemas)
    if params:
        op["parameters"] = params
    body = _request_body(route)
    if body is not None:
        op["requestBody"] = body
    responses: dict[str, Any] = {str(route.status): _success(route)}
    answers: dict[int, str | Answer] = {**_implied_errors(route), **route.extra_responses}
    for status, answer in sorted(answers.items()):
        responses[str(status)] = _answer(answer if isinstance(answer, Answer) else Answer(answer))
    if answers[503] in (DATABASE_LOCKED, LOCKED_OR_BUSY):
        responses["503"]["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    if not route.public:
        op["security"] = [{"apiKey": []}]
        if route.roles:
            op["description"] = "Roles: " + ", ".join(route.roles)
    op["responses"] = responses
    return op


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    models = {m for r in routes for m in (r.body, r.response, r.query) if m is not None}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(definitions.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    for route in routes:  # query models are inlined as parameters, not kept as schemas of their own
        if route.query is not None and route.query not in {r.body for r in routes} | {r.response for r in routes}:
            schemas.pop(route.query.__name__, None)
    schemas["Problem"] = _PROBLEM
    return {
        "openapi": "3.1.0",
        "info": {"title": "notifier", "version": notifier.__version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "notifier API key"}},
        },
    }
