"""OpenAPI 3.1 document generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import notifier
from notifier.api.routing import Route

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


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag], "operationId": route.handler.__name__}
    params = [
        {"name": name, "in": "path", "required": True, "schema": route.path_params.get(name, {"type": "integer"})}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        for name, field in route.query.model_fields.items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": field.is_required(),
                    "schema": {"type": "integer" if field.annotation is int else "string"},
                }
            )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": route.status == 201,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    responses: dict[str, Any] = {}
    if route.response is None:
        responses[str(route.status)] = {"description": "done"}
    else:
        schema: dict[str, Any] = _ref(route.response)
        if route.response_list:
            schema = {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": schema},
                    "next_cursor": {"type": ["string", "null"]},
                },
            }
        responses[str(route.status)] = {"description": "success", "content": {"application/json": {"schema": schema}}}
    for status, text in route.extra_responses.items():
        responses[str(status)] = {"description": text}
    if not route.public:
        responses["401"] = _problem_response("missing or wrong API key")
        responses["403"] = _problem_response("role or department does not allow this")
        op["security"] = [{"apiKey": []}]
        if route.roles:
            op["description"] = "Roles: " + ", ".join(route.roles)
    responses["422"] = _problem_response("invalid input, with a field-level error list")
    op["responses"] = responses
    return op


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    models = {m for r in routes for m in (r.body, r.response) if m is not None}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(definitions.get("$defs", {}))
    schemas["Problem"] = _PROBLEM
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notifier",
            "version": notifier.__version__,
            "description": "Multi-channel public-welfare notification service",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "notifier API key"}},
        },
    }
