"""Pages for residents (not the API): each module exports a ``ROUTES`` list of public routes."""

from notifier.web import me, subscribe, unsubscribe

ROUTES = [*subscribe.ROUTES, *me.ROUTES, *unsubscribe.ROUTES]

__all__ = ["ROUTES", "me", "subscribe", "unsubscribe"]
