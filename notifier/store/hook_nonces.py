"""Nonces of signed callbacks, remembered while their timestamp is acceptable (``sql/sqlite_009_hook_nonces.sql``).

Query-shaped, no policy: the hook decides the window and passes ``expires_at`` and ``now`` (epoch seconds).
"""

from __future__ import annotations

from notifier.store.database import Database


class HookNonceRepository:
    db: Database

    async def remember_hook_nonce(self, hook: str, nonce: str, expires_at: float, now: float) -> bool:
        """Record a nonce's use; False when it was already used and has not expired (a replay)."""
        changed = await self.db.execute(
            "remember_hook_nonce", {"hook": hook, "nonce": nonce, "expires_at": expires_at, "now": now}
        )
        return changed > 0

    async def forget_hook_nonce(self, hook: str, nonce: str) -> None:
        """Forget one nonce's use: what it stood for was not taken after all, and may come again."""
        await self.db.execute("forget_hook_nonce", {"hook": hook, "nonce": nonce})

    async def purge_hook_nonces(self, now: float) -> int:
        """Forget nonces whose timestamps the hooks refuse anyway by now."""
        return await self.db.execute("purge_hook_nonces", {"now": now})
