"""What every console answer carries: the security headers, the cookies' attributes, the CSRF checks.

The Content-Security-Policy allows scripts and styles only from the service itself (files under
``/console/static/``): no inline script, no inline style, no other origin. Forms post only to the service.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from notifier.api.keys import SETTINGS

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex",
}
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"  # the login form's double-submit CSRF value, before there is a session
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/console"


def secure_cookies(request: web.Request) -> bool:
    """Cookies marked Secure when the browser reaches the service over https (directly or behind a proxy
    whose public URL is https)."""
    return request.secure or request.app[SETTINGS].server.public_url.startswith("https://")


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request),
    )


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path=COOKIE_PATH)


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(presented: object, expected: str | None) -> bool:
    if not isinstance(presented, str) or not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
