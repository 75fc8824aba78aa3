"""The route table: one declaration per endpoint feeds both the router and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from notifier.api.problems import invalid_from_validation
from notifier.domain.errors import FieldError, InvalidInput

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_list: bool = False
    status: int = 200
    roles: tuple[str, ...] = ()
    public: bool = False
    extra_responses: dict[int, str] = field(default_factory=dict)
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # JSON schemas; integer when absent


async def read_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """Parse and validate a JSON body; every failure becomes a problem document, never a 500."""
    raw = await request.read()
    if not raw:
        raise InvalidInput("request body is empty", [FieldError("body", "a JSON object is required")])
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidInput(
            "request body is nested too deeply", [FieldError("body", "too deep", "json_invalid")]
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("request body is not valid JSON", [FieldError("body", str(exc), "json_invalid")]) from None
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object", [FieldError("body", "expected an object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None


def read_query(request: web.Request, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise invalid_from_validation(exc, "query.") from None


def path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{name} must be a positive integer", [FieldError(f"path.{name}", "not an integer")])
    return int(raw)


def json_response(model: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    text = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model, ensure_ascii=False)
    return web.Response(status=status, text=text, content_type="application/json", charset="utf-8")


def page_response(items: Sequence[BaseModel], next_cursor: str | None) -> web.Response:
    body = '{"items":[' + ",".join(i.model_dump_json() for i in items) + '],"next_cursor":'
    body += json.dumps(next_cursor) + "}"
    return web.Response(text=body, content_type="application/json", charset="utf-8")
