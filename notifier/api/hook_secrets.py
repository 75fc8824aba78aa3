"""The secrets a receipt or reply hook of an alias accepts: its ``hook_token`` and, while a rotation is under way
(the gateway or platform still calling with the old URL), its ``hook_token_previous``."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from notifier.config import ChannelConfig

TOKEN_OPTIONS = ("hook_token", "hook_token_previous")


def hook_secrets(channel: ChannelConfig) -> list[bytes]:
    """The alias's hook secrets that are set, the current one first; none when it has no hook token."""
    found = []
    for name in TOKEN_OPTIONS:
        value = channel.options.get(name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            found.append(value.encode("utf-8"))
    return found if channel.options.get("hook_token") else []


def matches_any(presented: bytes, expected: list[bytes]) -> bool:
    """Constant-time comparison with every expected value (no early exit that would tell which)."""
    matched = False
    for value in expected:
        matched |= hmac.compare_digest(presented, value)
    return matched
