"""Pages for residents (not the API): each module exports a ``ROUTES`` list of public routes."""

from notifier.web import subscribe, unsubscribe

ROUTES = [*subscribe.ROUTES, *unsubscribe.ROUTES]

__all__ = ["ROUTES", "subscribe", "unsubscribe"]
