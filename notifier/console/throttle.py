"""The login throttle: failed attempts per login name and per client address in a sliding window.

Five failures for one login name within 15 minutes lock that name for the rest of the window (the lockout
is written to the audit log once, when it starts); twenty failures from one address lock that address. A
locked attempt is refused before the password is looked at, so guessing during a lockout learns nothing.
A successful login clears its name's count, not its address's.
"""

from __future__ import annotations

from dataclasses import dataclass

from notifier.store import Store

WINDOW = 15 * 60.0
PER_LOGIN = 5
PER_CLIENT = 20


@dataclass(frozen=True)
class Verdict:
    locked: bool
    by: str = ""  # "login" or "client" when locked


async def check(store: Store, login: str, client_ip: str, now: float) -> Verdict:
    failures = await store.login_failures(login, client_ip, since=now - WINDOW)
    if failures.by_login >= PER_LOGIN:
        return Verdict(True, "login")
    if failures.by_client >= PER_CLIENT:
        return Verdict(True, "client")
    return Verdict(False)


async def record_failure(store: Store, login: str, client_ip: str, now: float, staff_id: int | None) -> None:
    """Note a failed attempt; when it is the one that locks an existing account, audit the lockout."""
    await store.note_login_attempt(login, client_ip, succeeded=False, now=now)
    failures = await store.login_failures(login, client_ip, since=now - WINDOW)
    if staff_id is not None and failures.by_login == PER_LOGIN:
        detail: dict[str, object] = {"login": login, "failures": PER_LOGIN, "window_seconds": int(WINDOW)}
        await store.audit("console:login", "staff.lockout", "staff_account", staff_id, detail)
