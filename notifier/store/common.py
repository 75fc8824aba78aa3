"""Small helpers shared by the repository modules."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from notifier.domain.errors import FieldError, InvalidInput
from notifier.domain.models import MAX_ID
from notifier.domain.text import ascii_digits


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: Any) -> str:
    """Compact JSON as the store writes it (one encoder for the process: ``json.dumps`` with options builds
    a new one per call, and the engine calls this for every batch)."""
    return _ENCODER.encode(value)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The last id of the previous page; InvalidInput for anything this API did not hand out."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id" or not ascii_digits(value) or int(value) > MAX_ID:
            raise ValueError
        return int(value)
    except ValueError:
        raise InvalidInput("invalid cursor", [FieldError("query.cursor", "not a cursor this API returned")]) from None


def page(rows: list[Any], limit: int, key: str = "id") -> tuple[list[Any], str | None]:
    """Cut a list fetched with limit+1 rows into (items, next cursor)."""
    if len(rows) > limit:
        items = rows[:limit]
        last = items[-1]
        return items, encode_cursor(last[key] if isinstance(last, dict) else getattr(last, key))
    return rows, None


def area_range(code: str) -> tuple[str, str]:
    """Bounds matching a code and every code under it (codes are prefix-hierarchical)."""
    return code, code + ":"  # ':' sorts right after '9'
