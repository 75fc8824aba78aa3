"""The error hierarchy of notifier.

    NotifierError
    ├── InvalidInput            bad data from a user (field-level details) -> 422
    ├── NotFound                -> 404
    ├── Conflict                the resource exists, or its state forbids the action -> 409
    ├── Unauthenticated         missing or wrong API key -> 401
    ├── Forbidden               the key's role or department does not allow it -> 403
    └── ConfigError             configuration does not validate; stops start-up

Each error carries the data an RFC 9457 problem document needs; the API turns them into
``application/problem+json`` at one place (``notifier.api.problems``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One invalid field: a JSON-pointer-like location, a message and a machine code."""

    loc: str
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, Any]:
        return {"loc": self.loc, "msg": self.msg, "type": self.type}


@dataclass
class NotifierError(Exception):
    detail: str
    status: int = 500
    title: str = "Internal error"
    slug: str = "internal"
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


class InvalidInput(NotifierError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail, 422, "Invalid input", "invalid-input")
        self.errors = errors or []


class NotFound(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 404, "Not found", "not-found")


class Conflict(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 409, "Conflict", "conflict")


class LastAdminAccount(Conflict):
    """Disabling the account would leave no active admin console account to manage the others."""

    def __init__(self, login: str) -> None:
        super().__init__(
            f"the console account {login} is the last active admin account; create another admin account first"
        )
        self.login = login


class Unauthenticated(NotifierError):
    def __init__(self, detail: str = "a valid API key is required: Authorization: Bearer <key>") -> None:
        super().__init__(detail, 401, "Unauthenticated", "unauthenticated")


class Forbidden(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 403, "Forbidden", "forbidden")


class ConfigError(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 500, "Configuration error", "config")
