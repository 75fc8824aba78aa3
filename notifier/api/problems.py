"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from notifier.domain.errors import FieldError, InvalidInput, NotifierError
from notifier.engine.render_threads import RenderThreadsBusy

log = logging.getLogger("notifier.api")

PROBLEM_JSON = "application/problem+json"
# another process holds the database past the busy timeout (10 s): a bulk import, a backup, an operator's shell
DATABASE_LOCKED_RETRY_AFTER = 5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_JSON,
        charset="utf-8",
        headers=headers,
    )


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals as problem documents, keeping the headers they must carry (``Allow`` on a 405)."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return problem(
            405,
            "Method not allowed",
            f"{exc.method} is not allowed here; allowed: {allowed}",
            slug="method-not-allowed",
            instance=request.path,
            headers={"Allow": allowed},
        )
    return problem(exc.status, exc.reason, exc.text or exc.reason, slug=f"http-{exc.status}", instance=request.path)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = "unknown field"
        errors.append(FieldError(f"{prefix}{loc}" if loc else prefix.rstrip("."), msg, error["type"]))
    return errors


def invalid_from_validation(exc: ValidationError, prefix: str = "") -> InvalidInput:
    errors = field_errors(exc, prefix)
    return InvalidInput(f"{len(errors)} invalid field(s): " + "; ".join(f"{e.loc}: {e.msg}" for e in errors), errors)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InvalidInput as exc:
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.slug,
            instance=request.path,
            errors=[e.as_dict() for e in exc.errors],
        )
    except NotifierError as exc:
        return problem(exc.status, exc.title, exc.detail, slug=exc.slug, instance=request.path, **exc.extra)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem(
            413, "Payload too large", exc.text or "request body too large", slug="too-large", instance=request.path
        )
    except HttpProcessingError as exc:  # a body aiohttp cannot parse (a broken multipart form, a bad header)
        return problem(
            400,
            "Bad request",
            f"the request could not be parsed: {exc.message}",
            slug="bad-request",
            instance=request.path,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except RenderThreadsBusy as exc:  # an anonymous page while the render threads' public share is taken
        return problem(
            503,
            "Unavailable",
            f"too many pages are being prepared; try again in {exc.retry_after} seconds",
            slug="busy",
            instance=request.path,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except Exception as exc:
        if logged_failure(request, exc) == 503:
            return problem(
                503,
                "Unavailable",
                f"the database is busy; try again in {DATABASE_LOCKED_RETRY_AFTER} seconds",
                slug="unavailable",
                instance=request.path,
                headers={"Retry-After": str(DATABASE_LOCKED_RETRY_AFTER)},
            )
        return _internal(request)


def logged_failure(request: web.Request, exc: Exception) -> int:
    """Log an exception no handler answered and return the status to answer it with: 503 for a database another
    process holds locked (a wait, not a fault; come back after ``DATABASE_LOCKED_RETRY_AFTER`` seconds), else 500
    with the traceback in the log. The API's problem documents and the console's error page both log through it.
    """
    if isinstance(exc, sqlite3.OperationalError) and is_database_locked(exc):
        log.warning("database locked on %s %s: answered 503", request.method, request.path)
        return 503
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return 500


def is_database_locked(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY ("database is locked") or SQLITE_LOCKED ("database table is locked"): a wait, not a fault."""
    return str(exc).startswith(("database is locked", "database table is locked"))


def _internal(request: web.Request) -> web.Response:
    return problem(
        500, "Internal error", "the server failed; the error was logged", slug="internal", instance=request.path
    )
