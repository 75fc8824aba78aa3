"""The console's first page: who is signed in, where to go from here, and the alerts sent by emergency override
whose approval after the fact is overdue (the department's; every department's for an admin)."""

from __future__ import annotations

from aiohttp import web

from notifier.console.framework import HOME_PATH, NAV, Console, NavItem, page
from notifier.console.notices import overdue_after_the_fact


@page()
async def home(request: web.Request, console: Console) -> web.StreamResponse:
    department = await console.store.get_department(console.staff.department)
    items = [item for item in request.app.get(NAV, ()) if item.visible_to(console.staff) and item.path != HOME_PATH]
    changed = request.query.get("changed") == "1"
    overdue = await overdue_after_the_fact(console)
    names = await console.store.people_names([], [n.overridden_by for n in overdue if n.overridden_by])
    return console.render(
        "home.html", department=department, items=items, password_changed=changed, overdue=overdue, names=names
    )


NAV_ITEMS = [NavItem(HOME_PATH, "首页", "Home")]
ROUTES = [("GET", HOME_PATH, home)]
