"""API keys: created with a secret shown once, checked on every request, listed and revoked.

Only a hash of the secret is stored. ``authenticate`` reads the key's row on every call, so a revocation
takes effect on the next request in every process; nothing caches a key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta

from notifier.domain.enums import Role
from notifier.domain.errors import NotFound
from notifier.domain.models import ApiKeyInfo, ApiKeyRecord
from notifier.store.catalog import CatalogRepository
from notifier.store.common import decode_cursor, now_iso, page

log = logging.getLogger("notifier.store")

KEY_PREFIX = "ntf"
# last_used_at is a hint for finding unused keys: writing it at most once a minute spares a write per request,
# and it is skipped when the database is busy
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    # API key secrets are 256-bit random values, so a plain SHA-256 is safe to store (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyRepository(CatalogRepository):
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
            detail: dict[str, object] = {"prefix": prefix, "department": department, "role": role}
            detail["after"] = {"prefix": prefix, "name": name, "department": department, "role": role, "revoked": False}
            await self.audit(actor, "apikey.create", "api_key", row["id"], detail)
        info = ApiKeyInfo(id=row["id"], name=name, department=department, role=role)
        return info, f"{KEY_PREFIX}_{prefix}_{secret}"

    async def authenticate(self, presented: str) -> ApiKeyInfo | None:
        """The key's identity, or None when it is unknown, revoked or the secret does not match."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        row = await self.db.fetch_one("get_api_key_by_prefix", {"prefix": parts[1]})
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_hash"], hash_secret(parts[2])):
            return None
        await self._note_use(row["id"], row["last_used_at"])
        return ApiKeyInfo(id=row["id"], name=row["name"], department=row["department"], role=row["role"])

    async def _note_use(self, key_id: int, last_used_at: str | None) -> None:
        now = datetime.now(UTC)
        if last_used_at is not None and now - datetime.fromisoformat(last_used_at) < LAST_USED_RESOLUTION:
            return
        try:
            async with self.db.transaction():
                await self.db.execute("touch_api_key", {"id": key_id, "now": now.isoformat(timespec="microseconds")})
        except sqlite3.Error as exc:  # a hint is not worth failing the request it was noted for
            log.warning("last use of API key %s not written: %s", key_id, exc)

    async def list_api_keys(
        self, *, department: str | None, cursor: str | None, limit: int
    ) -> tuple[list[ApiKeyRecord], str | None]:
        rows = await self.db.fetch_all(
            "list_api_keys", {"after": decode_cursor(cursor) or 0, "department": department, "limit": limit + 1}
        )
        items, next_cursor = page(rows, limit)
        return [ApiKeyRecord(**row) for row in items], next_cursor

    async def revoke_api_key(self, prefix: str, actor: str) -> ApiKeyRecord:
        """Revoke at once; revoking a revoked key changes nothing (its first revocation time stays)."""
        async with self.db.transaction():
            row = await self.db.fetch_one("get_api_key_by_prefix", {"prefix": prefix})
            if row is None:
                raise NotFound(f"no API key with prefix {prefix}")
            if row["revoked_at"] is None:
                await self.db.execute("revoke_api_key", {"id": row["id"], "now": now_iso()})
                detail: dict[str, object] = {"prefix": prefix, "department": row["department"], "role": row["role"]}
                detail.update(before={"revoked": False}, after={"revoked": True})
                await self.audit(actor, "apikey.revoke", "api_key", row["id"], detail)
            row = await self.db.fetch_one("get_api_key_by_prefix", {"prefix": prefix})
        assert row is not None
        return ApiKeyRecord(**row)
