"""Staff accounts of the console: who is signed in, and the identity they act under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from notifier.domain.enums import Role
from notifier.domain.models import ApiKeyInfo, Name

LoginName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{3,40}$", description="letters, digits, . _ -; 3 to 40")]


class StaffIn(BaseModel):
    """A new console account as ``notifier staff create`` takes it."""

    model_config = ConfigDict(extra="forbid")
    department: str
    role: Role
    name: Name
    login: LoginName | None = None


@dataclass(frozen=True)
class StaffMember:
    """A console account. ``key_id`` is the account's own API key row: the id its notices carry as author
    or approver, so the API's rules (an author never approves their own notice) hold in the console too."""

    id: int
    login: str
    name: str
    department: str
    role: Role
    key_id: int
    must_change_password: bool

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        return f"staff:{self.id}"

    def as_key(self) -> ApiKeyInfo:
        """The identity the policy functions (``notifier.policy``) and the store's decisions take."""
        return ApiKeyInfo(id=self.key_id, name=self.name, department=self.department, role=self.role)


@dataclass(frozen=True)
class StaffAccount:
    """An account as an admin lists it: the person, and whether and since when it can sign in."""

    member: StaffMember
    created_at: str
    password_changed_at: str | None
    disabled: bool


@dataclass(frozen=True)
class StaffSession:
    staff: StaffMember
    token_hash: str
    csrf_token: str
    expires_at: float
