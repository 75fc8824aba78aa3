"""What aiohttp refuses under ``/console`` before a page's own code answers: no such page (404), a method the page
does not take (405), a body over ``[server] max_body_bytes`` (413), a form it cannot parse (400); and what fails
under ``/console`` after it: an error no page handled (500) or a database another process holds locked (503, with
``Retry-After``). Each is the console's error page, in the staff member's language and with the security headers
every console page carries, not the API's problem document; paths outside ``/console`` pass through to the API's
problem middleware. A failure is logged as the API logs it (``problems.logged_failure``), and its page says
nothing of it (no exception text, no traceback) and does not look the session up: the database may be what
failed.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from notifier.api.keys import SETTINGS
from notifier.api.problems import DATABASE_LOCKED_RETRY_AFTER, logged_failure
from notifier.console import security
from notifier.console.framework import HOME_PATH, Console, Handler, current_session, error_page
from notifier.console.i18n import request_language
from notifier.domain.errors import NotifierError

MEBIBYTE = 1024 * 1024


def is_console_path(path: str) -> bool:
    return path == HOME_PATH or path.startswith(HOME_PATH + "/")


def size_text(size: int) -> str:
    """A byte count as people read it: 1 MB, 2.5 MB, 512 KB."""
    if size >= MEBIBYTE:
        return f"{round(size / MEBIBYTE, 1):g} MB"
    return f"{round(size / 1024, 1):g} KB"


@web.middleware
async def console_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_console_path(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return await refusal_page(request, exc)
    except HttpProcessingError:  # a body aiohttp cannot parse: a broken multipart form
        return await refusal_page(request, web.HTTPBadRequest())
    except NotifierError as exc:  # raised outside a page's handler (the page decorator shows a handler's own)
        return failure_page(request, exc.status, exc.detail)
    except Exception as exc:
        return failure_page(request, logged_failure(request, exc))


async def refusal_page(request: web.Request, exc: web.HTTPException) -> web.Response:
    """The error page for ``exc``, with the staff member's navigation when a session is signed in (looking at it
    does not count as activity)."""
    language, _ = request_language(request)
    console = Console(request, await current_session(request, activity=False), language)
    t = console.t
    if isinstance(exc, web.HTTPNotFound):
        message = t("没有这个页面", "There is no such page")
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        message = t(f"此页面不接受 {exc.method} 请求", f"This page does not take a {exc.method} request")
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = size_text(request.app[SETTINGS].server.max_body_bytes)
        message = t(
            f"文件过大：工作台接受的上传最大为 {limit}（设置项 [server] max_body_bytes）。请拆分文件后分别上传。",
            f"The file is too large: the console takes uploads of at most {limit} (the setting "
            "[server] max_body_bytes). Split the file and upload the parts one by one.",
        )
    elif exc.status == 400:
        message = t("无法读取提交的内容", "What was sent could not be read")
    else:
        message = exc.reason
    response = error_page(console, exc.status, message)
    response.headers.update(security.HEADERS)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    return response


def failure_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    """The error page of a failure: ``message``, else what a 500 or a 503 means to the staff member."""
    language, _ = request_language(request)
    console = Console(request, None, language)
    t = console.t
    if message is None and status == 503:
        message = t(
            f"数据库正忙，请 {DATABASE_LOCKED_RETRY_AFTER} 秒后重试",
            f"The database is busy; try again in {DATABASE_LOCKED_RETRY_AFTER} seconds",
        )
    elif message is None:
        message = t(
            "服务器出错，错误已记入日志。请稍后重试；如仍出错，请告知管理员。",
            "The server failed; the error was logged. Try again later, and tell the administrator if it fails again.",
        )
    response = error_page(console, status, message)
    response.headers.update(security.HEADERS)
    if status == 503:
        response.headers["Retry-After"] = str(DATABASE_LOCKED_RETRY_AFTER)
    return response
