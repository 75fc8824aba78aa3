"""Pages for residents (not the API): each module exports a ``ROUTES`` list of public routes."""

from notifier.web import (
    confirm,
    feedback_form,
    feeds,
    kiosk,
    me,
    public_notices,
    public_pages,
    publicity,
    subscribe,
    unsubscribe,
)

# GET /public/notices/{id} is public_notices.notice_page, which hands a publicity notice to publicity.publicity_page
ROUTES = [
    *subscribe.ROUTES,
    *me.ROUTES,
    *unsubscribe.ROUTES,
    *confirm.ROUTES,
    *feedback_form.ROUTES,
    *public_pages.ROUTES,
    *public_notices.ROUTES,
    *feeds.ROUTES,
    *kiosk.ROUTES,
]

__all__ = [
    "ROUTES", "confirm", "feedback_form", "feeds", "kiosk", "me", "public_notices", "public_pages", "publicity",
    "subscribe", "unsubscribe",
]  # fmt: skip
