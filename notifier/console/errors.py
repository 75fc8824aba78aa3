"""What aiohttp refuses under ``/console`` before a page's own code answers: no such page (404), a method the page
does not take (405), a body over ``[server] max_body_bytes`` (413), a form it cannot parse (400). Each is the
console's error page, in the staff member's language and with the security headers every console page carries,
not the API's problem document; paths outside ``/console`` pass through to the API's problem middleware.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from notifier.api.keys import SETTINGS
from notifier.console import security
from notifier.console.framework import HOME_PATH, Console, Handler, current_session, error_page
from notifier.console.i18n import request_language

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
