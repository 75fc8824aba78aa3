"""The delivery engine: from an approved notice to a confirmed delivery for every resident it concerns,
and, for the kinds ``bot`` and ``bulletin``, for every area it concerns (``engine.areas``).

What the rest of the service calls:

    Engine(store, settings, channels)   start() / stop() / wake() / run_once() / run_until_idle()
    check_renders(store, notice, ...)   refuse a new notice whose template does not render with its data
    cancel_notice(store, id, actor)     stop every delivery not yet sent
    preview(store, notice)              residents and deliveries per channel per town, before approval
    sms_bill(text, deliveries, ...)     the SMS parts each gateway would bill for them (engine.sms_bill)
    record_receipt(store, alias, provider_message_id, status, detail)
    add_recurring_notice(store, rules, notice, department=, cron=, actor=)   approved later as a series
"""

from notifier.engine.control import cancel_notice, check_renders, preview
from notifier.engine.engine import Engine
from notifier.engine.receipts import ReceiptOutcome, record_receipt
from notifier.engine.render import Renderer, RenderError
from notifier.engine.retry import RetryDecision, RetryPolicy
from notifier.engine.scheduling import add_recurring_notice

__all__ = [
    "Engine",
    "ReceiptOutcome",
    "RenderError",
    "Renderer",
    "RetryDecision",
    "RetryPolicy",
    "add_recurring_notice",
    "cancel_notice",
    "check_renders",
    "preview",
    "record_receipt",
]
