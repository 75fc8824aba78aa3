"""The HTTP face: JSON API under /api/v1, health, metrics, OpenAPI and receipt hooks."""

from notifier.api.app import create_app

__all__ = ["create_app"]
