"""The staff console (``/console``): server-rendered pages over the same store, policy and engine as the API.

Each page module exports ``ROUTES`` (method, path, handler) and may export ``NAV_ITEMS``; add it to the
lists below. How a page is written: ``notifier.console.framework`` and docs/console.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from notifier.console import (
    auth_pages,
    channels,
    compose,
    feedback,
    follow,
    home,
    notices,
    reports,
    residents,
    rosters,
    staff_accounts,
    static,
    template_pages,
    unconfirmed,
)
from notifier.console.framework import NAV, NavItem

ConsoleRoute = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]

ROUTES: list[ConsoleRoute] = [
    *static.ROUTES,
    *auth_pages.ROUTES,
    *home.ROUTES,
    *compose.ROUTES,  # before notices: /console/notices/new is not a notice's id
    *notices.ROUTES,
    *follow.ROUTES,
    *unconfirmed.ROUTES,
    *residents.ROUTES,
    *rosters.ROUTES,
    *template_pages.ROUTES,
    *channels.ROUTES,
    *feedback.ROUTES,
    *reports.ROUTES,
    *staff_accounts.ROUTES,
]
NAV_ITEMS: list[NavItem] = [
    *home.NAV_ITEMS,
    *compose.NAV_ITEMS,
    *notices.NAV_ITEMS,
    *residents.NAV_ITEMS,
    *rosters.NAV_ITEMS,
    *template_pages.NAV_ITEMS,
    *channels.NAV_ITEMS,
    *feedback.NAV_ITEMS,
    *reports.NAV_ITEMS,
    *staff_accounts.NAV_ITEMS,
]


def setup(app: web.Application) -> None:
    """Add the console's routes to an app. They are pages for people, not API operations: they stay out of
    the OpenAPI document."""
    app[NAV] = NAV_ITEMS
    residents.setup(app)
    follow.setup(app)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
