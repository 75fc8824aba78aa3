"""The Store: the repository the engine, API and CLI use; SQL runs through a Database."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from notifier.domain.enums import Role
from notifier.domain.models import ApiKeyInfo
from notifier.store.areas import AreaDeliveryRepository
from notifier.store.common import now_iso
from notifier.store.database import Database
from notifier.store.deliveries import DeliveryRepository
from notifier.store.notices import NoticeRepository
from notifier.store.subscription_requests import SubscriptionRequestRepository

KEY_PREFIX = "ntf"


def hash_secret(secret: str) -> str:
    # API key secrets are 256-bit random values, so a plain SHA-256 is safe to store (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class Store(NoticeRepository, DeliveryRepository, AreaDeliveryRepository, SubscriptionRequestRepository):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_api_key(self, *, department: str, role: Role, name: str, actor: str) -> tuple[ApiKeyInfo, str]:
        """Return the key's record and its plain text, which is never stored."""
        await self.get_department(department)
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "insert_api_key",
                {
                    "prefix": prefix,
                    "secret_hash": hash_secret(secret),
                    "name": name,
                    "department": department,
                    "role": role.value,
                    "now": now_iso(),
                },
            )
            assert row is not None
            await self.audit(actor, "apikey.create", "api_key", row["id"], {"department": department, "role": role})
        info = ApiKeyInfo(id=row["id"], name=name, department=department, role=role)
        return info, f"{KEY_PREFIX}_{prefix}_{secret}"

    async def authenticate(self, presented: str) -> ApiKeyInfo | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        row = await self.db.fetch_one("get_api_key_by_prefix", {"prefix": parts[1]})
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_hash"], hash_secret(parts[2])):
            return None
        return ApiKeyInfo(id=row["id"], name=row["name"], department=row["department"], role=row["role"])


async def open_database(url: str) -> Database:
    """Connect to the database a ``[database] url`` names."""
    if url.startswith("sqlite:///"):
        from notifier.store.sqlite import SqliteDatabase

        db: Database = SqliteDatabase(url.removeprefix("sqlite:///"))
    else:
        raise NotImplementedError("PostgreSQL support arrives with the scale-out issue; use sqlite:/// for now")
    await db.connect()
    return db
