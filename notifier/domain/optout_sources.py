"""Who made an opt-out, and so who may take it back.

An opt-out the resident made themselves -- a reply to an SMS ("TD"), the unsubscribe link in a message, their own
subscription page -- is their refusal: a department's key may not clear it, not even on the department's own
topic, or staff could undo a resident's STOP. The resident takes it back (their page, or subscribing again); an
admin key may correct the record, and that is audited like every change. An opt-out a department's key recorded
(source ``api:apikey:<id>``), the department may take back.
"""

from __future__ import annotations

RESIDENT_SOURCES = {"sms-reply": "a reply to an SMS", "one-click": "the unsubscribe link in a message"}
RESIDENT_PAGE_PREFIX = "api:web:"  # the resident pages' actors, web:subscribe and web:me

__all__ = ["how_the_resident_opted_out", "made_by_resident"]


def made_by_resident(source: str) -> bool:
    return source in RESIDENT_SOURCES or source.startswith(RESIDENT_PAGE_PREFIX)


def how_the_resident_opted_out(source: str) -> str:
    """In English, for a problem document: by what the resident opted out."""
    return RESIDENT_SOURCES.get(source, "their own subscription page")
