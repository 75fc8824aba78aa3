"""The console's first page: who is signed in and where to go from here."""

from __future__ import annotations

from aiohttp import web

from notifier.console.framework import HOME_PATH, NAV, Console, NavItem, page


@page()
async def home(request: web.Request, console: Console) -> web.StreamResponse:
    department = await console.store.get_department(console.staff.department)
    items = [item for item in request.app.get(NAV, ()) if item.visible_to(console.staff) and item.path != HOME_PATH]
    changed = request.query.get("changed") == "1"
    return console.render("home.html", department=department, items=items, password_changed=changed)


NAV_ITEMS = [NavItem(HOME_PATH, "首页", "Home")]
ROUTES = [("GET", HOME_PATH, home)]
