"""Console accounts, their sessions and the login throttle's record.

The store keeps password hashes it is given (argon2, made by ``notifier.console.passwords``) and the
SHA-256 of session cookies; it never sees a password or a cookie it could replay. Times of sessions and
attempts are epoch seconds passed in by the caller, so tests can move the clock.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from notifier.domain.enums import Role
from notifier.domain.errors import Conflict, LastAdminAccount, NotFound
from notifier.domain.staff import StaffAccount, StaffMember, StaffSession
from notifier.domain.text import ascii_digits
from notifier.store.api_keys import hash_secret
from notifier.store.catalog import CatalogRepository
from notifier.store.common import now_iso
from notifier.store.database import Row


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginFailures:
    by_login: int
    by_client: int


@dataclass(frozen=True)
class StoredStaff:
    """An account as stored, with what signing in must check."""

    member: StaffMember
    password_hash: str
    disabled: bool


def _member(row: Row) -> StaffMember:
    return StaffMember(
        id=row["id"],
        login=row["login"],
        name=row["name"],
        department=row["department"],
        role=Role(row["role"]),
        key_id=row["key_id"],
        must_change_password=bool(row["must_change_password"]),
    )


class StaffRepository(CatalogRepository):
    async def create_staff_account(
        self, *, department: str, role: Role, name: str, login: str | None, password_hash: str, actor: str
    ) -> StaffMember:
        """A new account and its API key row (whose secret is thrown away: the account signs in with its
        password, never with a key). Without ``login``, the login name is ``<department>-<id>``."""
        await self.get_department(department)
        async with self.db.transaction():
            if login is not None and await self.db.fetch_one("staff_login_taken", {"login": login}):
                raise Conflict(f"the login name {login} is taken")
            key = await self.db.fetch_one(
                "insert_api_key",
                {
                    "prefix": secrets.token_hex(6),
                    "secret_hash": hash_secret(secrets.token_urlsafe(32)),
                    "name": f"console: {name}",
                    "department": department,
                    "role": role.value,
                    "now": now_iso(),
                },
            )
            assert key is not None
            params = {"name": name, "department": department, "role": role.value, "key_id": key["id"]}
            row = await self.db.fetch_one(
                "insert_staff_account",
                {**params, "login": login or f"pending-{key['id']}", "password_hash": password_hash, "now": now_iso()},
            )
            assert row is not None
            if login is None:
                login = f"{department}-{row['id']}"
                if await self.db.fetch_one("staff_login_taken", {"login": login}):
                    raise Conflict(f"the login name {login} is taken; give one with --login")
                await self.db.execute("set_staff_login", {"id": row["id"], "login": login})
            detail: dict[str, object] = {"login": login, "department": department, "role": role.value}
            await self.audit(actor, "staff.create", "staff_account", row["id"], detail)
        created = await self.get_staff(row["id"])
        assert created is not None
        return created.member

    async def get_staff(self, staff_id: int) -> StoredStaff | None:
        return _stored(await self.db.fetch_one("get_staff_by_id", {"id": staff_id}))

    async def get_staff_by_login(self, login: str) -> StoredStaff | None:
        return _stored(await self.db.fetch_one("get_staff_by_login", {"login": login}))

    async def set_staff_password(self, staff: StaffMember, password_hash: str, *, keep_session: str) -> None:
        """Store the new hash, end every other session of the account, audit the change."""
        async with self.db.transaction():
            await self.db.execute(
                "set_staff_password", {"id": staff.id, "password_hash": password_hash, "now": now_iso()}
            )
            await self.db.execute("delete_other_staff_sessions", {"staff_id": staff.id, "token_hash": keep_session})
            await self.audit(staff.actor, "staff.password_change", "staff_account", staff.id, {"login": staff.login})

    async def list_staff_accounts(self, department: str | None = None) -> list[StaffAccount]:
        """Every account (of ``department`` when given), disabled ones included, by department and login."""
        rows = await self.db.fetch_all("list_staff_accounts", {"department": department})
        return [_account(row) for row in rows]

    async def disable_staff_account(self, login: str, actor: str) -> StaffAccount:
        """The account can no longer sign in and its open sessions end now; for good (a new account is made for
        the person if they come back). Conflict when it is disabled already; LastAdminAccount when it is the last
        active admin account, decided in the transaction that disables (see ``_keep_an_admin``)."""
        async with self.db.transaction():
            stored = await self._staff_to_manage(login)
            if stored.disabled:
                raise Conflict(f"the console account {login} is disabled already")
            if stored.member.role is Role.ADMIN:
                await self._keep_an_admin(stored.member)
            if not await self.db.execute("disable_staff_account", {"id": stored.member.id, "now": now_iso()}):
                raise Conflict(f"the console account {login} is disabled already")
            ended = await self.db.execute("delete_staff_sessions", {"staff_id": stored.member.id})
            detail: dict[str, object] = {"login": login, "sessions_ended": ended}
            await self.audit(actor, "staff.disable", "staff_account", stored.member.id, detail)
        return await self._account_of(login)

    async def reset_staff_password(self, login: str, password_hash: str, actor: str) -> StaffAccount:
        """A forgotten password: ``password_hash`` (of a one-time password) replaces it, to be changed at the next
        sign-in, and every open session of the account ends. Conflict for a disabled account."""
        async with self.db.transaction():
            stored = await self._staff_to_manage(login)
            if stored.disabled:
                raise Conflict(f"the console account {login} is disabled; create a new account for the person")
            params = {"id": stored.member.id, "password_hash": password_hash, "now": now_iso()}
            await self.db.execute("reset_staff_password", params)
            ended = await self.db.execute("delete_staff_sessions", {"staff_id": stored.member.id})
            detail: dict[str, object] = {"login": login, "sessions_ended": ended}
            await self.audit(actor, "staff.password_reset", "staff_account", stored.member.id, detail)
        return await self._account_of(login)

    async def _keep_an_admin(self, leaving: StaffMember) -> None:
        """LastAdminAccount unless an active admin account other than ``leaving`` remains. On PostgreSQL the query
        locks every active admin account's row until the transaction ends: of two admins disabling each other at
        once, the second waits for the first, then no longer sees the account it disabled and is refused. SQLite
        lets one writer in at a time, which orders them the same way."""
        active = await self.db.fetch_all("lock_active_staff_admins", {"role": Role.ADMIN.value})
        if not any(row["id"] != leaving.id for row in active):
            raise LastAdminAccount(leaving.login)

    async def _staff_to_manage(self, login: str) -> StoredStaff:
        stored = await self.get_staff_by_login(login)
        if stored is None:
            raise NotFound(f"no console account with the login name {login}")
        return stored

    async def _account_of(self, login: str) -> StaffAccount:
        row = await self.db.fetch_one("get_staff_by_login", {"login": login})
        assert row is not None
        return _account(row)

    # sessions

    async def open_staff_session(
        self, stored: StoredStaff, *, now: float, ttl: float
    ) -> tuple[str, StaffSession] | None:
        """A new session for the account whose password was checked against ``stored``: the cookie value (shown
        once, to the browser) and the session; None when the password was reset or the account disabled while it
        was being checked (the check takes a while), so no session outlives a reset that meant to end them all."""
        staff = stored.member
        token = secrets.token_urlsafe(32)
        session = StaffSession(staff, token_hash(token), secrets.token_urlsafe(32), now + ttl)
        async with self.db.transaction():
            held = {"id": staff.id, "password_hash": stored.password_hash}
            if not await self.db.execute("hold_staff_password", held):
                return None
            await self.db.execute("delete_expired_staff_sessions", {"now": now})
            await self.db.execute(
                "insert_staff_session",
                {
                    "token_hash": session.token_hash,
                    "staff_id": staff.id,
                    "csrf_token": session.csrf_token,
                    "now": now,
                    "expires_at": session.expires_at,
                },
            )
        return token, session

    async def find_staff_session(
        self, token: str, *, now: float, idle: float, activity: bool = True
    ) -> StaffSession | None:
        """The live session a cookie names: not past its expiry, not idle longer than ``idle`` seconds, and
        its account neither disabled nor its key revoked. Seeing it counts as activity unless ``activity`` is
        false (what a page asks by itself, not its user)."""
        hashed = token_hash(token)
        row = await self.db.fetch_one("get_staff_session", {"token_hash": hashed, "now": now})
        if row is None or now - row["last_seen_at"] > idle:
            return None
        stored = await self.get_staff(row["staff_id"])
        if stored is None or stored.disabled:
            return None
        # one write per half minute of activity is plenty for the idle limit
        if activity and now - row["last_seen_at"] > 30:
            await self.db.execute("touch_staff_session", {"token_hash": hashed, "now": now})
        return StaffSession(stored.member, hashed, row["csrf_token"], row["expires_at"])

    async def close_staff_session(self, session: StaffSession) -> None:
        async with self.db.transaction():
            await self.db.execute("delete_staff_session", {"token_hash": session.token_hash})
            await self.audit(session.staff.actor, "staff.logout", "staff_account", session.staff.id)

    async def people_names(self, key_ids: list[int], actors: list[str]) -> dict[str, str]:
        """Display names for authors (by API key id, as ``"key:<id>"``) and for audit actors (``"staff:<id>"``,
        ``"apikey:<id>"``): the person's name for a console account, else the key's name."""
        staff_ids = {int(a.split(":", 1)[1]) for a in actors if a.startswith("staff:") and ascii_digits(a[6:])}
        key_ids = [
            *key_ids,
            *(int(a.split(":", 1)[1]) for a in actors if a.startswith("apikey:") and ascii_digits(a[7:])),
        ]
        names: dict[str, str] = {}
        for row in await self.db.fetch_all("console_key_names", {"ids": json.dumps(sorted(set(key_ids)))}):
            names[f"key:{row['id']}"] = names[f"apikey:{row['id']}"] = row["staff_name"] or row["key_name"]
        for row in await self.db.fetch_all("console_staff_names", {"ids": json.dumps(sorted(staff_ids))}):
            names[f"staff:{row['id']}"] = row["name"]
        return names

    # the login throttle's record

    async def note_login_attempt(self, login: str, client_ip: str, *, succeeded: bool, now: float) -> None:
        params = {"login": login, "client_ip": client_ip, "succeeded": int(succeeded), "now": now}
        await self.db.execute("insert_staff_login_attempt", params)

    async def purge_staff_login_attempts(self, before: float) -> int:
        """Forget login attempts older than ``before``; they hold client addresses."""
        return await self.db.execute("purge_staff_login_attempts", {"before": before})

    async def login_failures(self, login: str, client_ip: str, *, since: float) -> LoginFailures:
        row = await self.db.fetch_one(
            "count_staff_login_failures", {"login": login, "client_ip": client_ip, "since": since}
        )
        assert row is not None
        return LoginFailures(by_login=row["by_login"], by_client=row["by_client"])


def _stored(row: Row | None) -> StoredStaff | None:
    if row is None:
        return None
    return StoredStaff(_member(row), row["password_hash"], _disabled(row))


def _disabled(row: Row) -> bool:
    return row["disabled_at"] is not None or row["key_revoked_at"] is not None


def _account(row: Row) -> StaffAccount:
    return StaffAccount(_member(row), row["created_at"], row["password_changed_at"], _disabled(row))
