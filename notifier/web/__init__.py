"""Pages for residents (not the API): each module exports a ``ROUTES`` list of public routes."""

from notifier.web import me, publicity, subscribe, unsubscribe

ROUTES = [*subscribe.ROUTES, *me.ROUTES, *unsubscribe.ROUTES, *publicity.ROUTES]

__all__ = ["ROUTES", "me", "publicity", "subscribe", "unsubscribe"]
