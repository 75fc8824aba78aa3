"""The HTTP face: JSON API under /api/v1, health, metrics, OpenAPI and receipt hooks.

``create_app`` is imported on first use, not here: the resident pages import ``notifier.api.keys``, and an
eager import of the app (which imports those pages) made ``import notifier.web`` fail half-way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from notifier.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
