"""Pages for residents (not the API): each module exports a ``ROUTES`` list of public routes."""

from notifier.web import confirm, feedback_form, me, publicity, subscribe, unsubscribe

ROUTES = [*subscribe.ROUTES, *me.ROUTES, *unsubscribe.ROUTES, *publicity.ROUTES, *confirm.ROUTES, *feedback_form.ROUTES]

__all__ = ["ROUTES", "confirm", "feedback_form", "me", "publicity", "subscribe", "unsubscribe"]
