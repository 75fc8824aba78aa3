"""Passwords of console accounts: argon2id hashes (argon2-cffi), one-time passwords, the rules for new ones.

Hashing and checking cost tens of milliseconds of CPU and memory on purpose, so they run in a thread and
never block the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 200
# no 0/O, 1/l/I: a one-time password is read off a screen or a slip of paper and typed by hand
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_HASHER = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory profile; stateless, thread-safe


def one_time_password() -> str:
    """Three groups of five characters (about 87 bits), e.g. ``k7QmR-2xPwe-Hn4tZ``."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(3))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def check_password(stored_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _HASHER.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def spend_check_time(password: str) -> None:
    """As long as a real check: an unknown login name must not answer faster than a wrong password."""
    await check_password(_dummy_hash(), password)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def new_password_problem(new: str, confirm: str, current: str) -> tuple[str, str, str] | None:
    """Why a new password is refused, as (field, Chinese, English); None when it is acceptable."""
    if new != confirm:
        return "confirm", "两次输入的新密码不一致", "the two new passwords differ"
    if len(new) < MIN_LENGTH:
        return "new_password", f"新密码至少{MIN_LENGTH}个字符", f"at least {MIN_LENGTH} characters"
    if len(new) > MAX_LENGTH:
        return "new_password", f"新密码最多{MAX_LENGTH}个字符", f"at most {MAX_LENGTH} characters"
    if new == current:
        return "new_password", "新密码不能与原密码相同", "must differ from the current password"
    return None
