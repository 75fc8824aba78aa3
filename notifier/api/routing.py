"""The route table: one declaration per endpoint feeds both the router and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from notifier.api.problems import invalid_from_validation
from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.text import ascii_digits

ModelT = TypeVar("ModelT", bound=BaseModel)
Schema = Mapping[str, Any]

PATH_ID_DIGITS = 18  # ASCII digits of a path id: anything longer is refused before reaching the store
JSON_MEDIA = ("application/json", "application/octet-stream")  # the second is what no Content-Type reads as


@dataclass(frozen=True)
class Answer:
    """A documented answer of an operation: what it means, its media type and, when not a problem, its schema."""

    description: str
    media: str = "application/problem+json"  # "" for an answer without a body
    schema: Schema | None = None


@dataclass(frozen=True)
class Param:
    """A query or header parameter a handler reads itself (routes with a ``query`` model get theirs from it)."""

    name: str
    schema: Schema
    where: Literal["query", "header"] = "query"
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Link:
    """An operation the success answer's ``id`` feeds (OpenAPI links: what to call next with it)."""

    operation_id: str
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One endpoint: its handler and everything the OpenAPI document says about it.

    ``body`` is a JSON body model; ``content`` describes any other body (a form, XML, an array) by media type.
    ``extra_responses`` adds answers besides those implied by the route (401/403 for keyed routes, 404 and 422
    for path ids, 413/415/422 for JSON bodies, 422 for query models); a plain string is a problem document.
    """

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
    extra_responses: Mapping[int, str | Answer] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    content: Mapping[str, Schema] = field(default_factory=dict)
    content_required: bool = False
    success: Answer | None = None
    links: tuple[Link, ...] = ()
    path_params: Mapping[str, Schema] = field(default_factory=dict)  # JSON schemas; a numeric id when absent
    success_media: Mapping[str, Schema] = field(default_factory=dict)  # other media of the success, by Accept


async def read_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """Parse and validate a JSON body; every failure becomes a problem document, never a 500."""
    media = request.content_type
    if media not in JSON_MEDIA and not (media.startswith("application/") and media.endswith("+json")):
        raise web.HTTPUnsupportedMediaType(text=f"the body must be application/json, not {media[:100]}")
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
    try:  # strict: a boolean is true or false and a number a number, as the OpenAPI document says
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if not any(error["type"] == "json_invalid" for error in exc.errors()):
            raise invalid_from_validation(exc) from None
    # JSON that pydantic's parser refuses and Python's takes (deeper nesting, lone surrogates): the model's own
    # checks name the field at fault
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None


def read_query(request: web.Request, model: type[ModelT]) -> ModelT:
    return validate_query(model, request.query)


def validate_query(model: type[ModelT], query: Mapping[str, str]) -> ModelT:
    """Query parameters as ``model``; a 422 naming each wrong one (``query.<name>``)."""
    # no text the service keeps holds U+0000 (PostgreSQL cannot store one), so no filter can match it
    nul = [name for name, value in query.items() if "\x00" in value]
    if nul:
        raise InvalidInput(
            "a query parameter holds a NUL character",
            [FieldError(f"query.{name}", "contains a NUL character (U+0000)", "nul_character") for name in nul],
        )
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise invalid_from_validation(exc, "query.") from None


def path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not ascii_digits(raw) or len(raw) > PATH_ID_DIGITS:
        raise InvalidInput(f"{name} must be a positive integer", [FieldError(f"path.{name}", "not an integer")])
    return int(raw)


def json_response(model: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    text = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model, ensure_ascii=False)
    return web.Response(status=status, text=text, content_type="application/json", charset="utf-8")


def page_response(items: Sequence[BaseModel], next_cursor: str | None) -> web.Response:
    body = '{"items":[' + ",".join(i.model_dump_json() for i in items) + '],"next_cursor":'
    body += json.dumps(next_cursor) + "}"
    return web.Response(text=body, content_type="application/json", charset="utf-8")
