"""Signed, expiring, URL-safe tokens for links in messages (one-click unsubscribe and the like).

A token is ``<payload>.<signature>``, both base64url without padding:

    payload    compact JSON of the caller's claims plus ``exp`` (expiry, Unix seconds)
    signature  HMAC-SHA256 (RFC 2104, https://www.rfc-editor.org/rfc/rfc2104) over a fixed context
               string and the encoded payload, keyed with ``security.signing_secret``

The claims are signed, not encrypted: anyone holding the link can read them, so they carry ids, never
names, addresses or phone numbers. Signatures are compared in constant time (``hmac.compare_digest``).

Errors (all subclasses of ``ValueError``, so a caller may catch one thing):

    TokenError
    ├── MalformedToken   not a token at all (wrong shape, bad base64, bad JSON, missing claims)
    ├── TamperedToken    well formed, but the signature does not match (edited, or another secret)
    └── ExpiredToken     genuine, but past its ``exp``

``UnsubscribeLinks`` builds the link the email adapter puts in ``List-Unsubscribe``
(RFC 2369 https://www.rfc-editor.org/rfc/rfc2369, RFC 8058 https://www.rfc-editor.org/rfc/rfc8058);
``read_unsubscribe`` checks such a token for the ``/unsubscribe`` endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import quote

from pydantic import SecretStr

from notifier.config import Settings
from notifier.domain.models import MAX_ID

_CONTEXT = b"notifier-signed-link-v1."
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
UNSUBSCRIBE_PATH = "/unsubscribe"
UNSUBSCRIBE_PURPOSE = "unsub"
DEFAULT_UNSUBSCRIBE_TTL = 180 * 86400.0  # residents unsubscribe from old mail too
MAX_TOKEN_LENGTH = 2048  # links stay well inside what browsers and mail clients keep of a URL
Secret = str | bytes | SecretStr


class TokenError(ValueError):
    """A token that must not be honoured."""


class MalformedToken(TokenError):
    pass


class TamperedToken(TokenError):
    pass


class ExpiredToken(TokenError):
    pass


def _key(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """The bytes of canonical base64url: the unused low bits of the last character must be zero, else two
    spellings would carry one signature (an edited token must never verify)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("the token is not valid base64url") from None
    if _b64encode(raw) != text:
        raise TamperedToken("the token was edited: it is not canonical base64url")
    return raw


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, _CONTEXT + payload.encode("ascii"), hashlib.sha256).digest()


def sign(payload: dict[str, Any], secret: Secret, ttl: float, *, now: float | None = None) -> str:
    """A token carrying ``payload`` (JSON-serialisable; ``exp`` is reserved) valid for ``ttl`` seconds."""
    if "exp" in payload:
        raise ValueError("'exp' is set by sign(); do not pass it")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    issued = time.time() if now is None else now
    claims = {**payload, "exp": int(issued + ttl)}
    body = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    token = f"{body}.{_b64encode(_mac(_key(secret), body))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"the claims make a token longer than {MAX_TOKEN_LENGTH} characters")
    return token


def verify(token: str, secret: Secret, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a genuine, unexpired token (without ``exp``); TokenError otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not _SHAPE.fullmatch(token):
        raise MalformedToken("the token does not have the form payload.signature")
    body, signature = token.split(".")
    expected = _mac(_key(secret), body)
    if not hmac.compare_digest(expected, _b64decode(signature)):
        raise TamperedToken("the token's signature does not match")
    try:
        claims = json.loads(_b64decode(body))
    except (UnicodeDecodeError, ValueError):
        raise MalformedToken("the token's payload is not JSON") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise MalformedToken("the token's payload has no expiry")
    if claims.pop("exp") <= (time.time() if now is None else now):
        raise ExpiredToken("the token has expired")
    return claims


@dataclass(frozen=True)
class UnsubscribeClaims:
    subscriber_id: int
    channel: str  # channel kind the resident leaves, e.g. "email"
    notice_id: int | None = None  # the notice whose message carried the link (for the audit log)


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Builds ``<public_url>/unsubscribe?token=…`` links; one instance per process, from the settings."""

    public_url: str
    secret: SecretStr
    ttl: float = DEFAULT_UNSUBSCRIBE_TTL

    @classmethod
    def from_settings(cls, settings: Settings) -> UnsubscribeLinks:
        return cls(settings.server.public_url, settings.security.signing_secret)

    def token(self, subscriber_id: int, channel: str, notice_id: int | None = None) -> str:
        claims: dict[str, Any] = {"p": UNSUBSCRIBE_PURPOSE, "s": subscriber_id, "c": channel}
        if notice_id is not None:
            claims["n"] = notice_id
        return sign(claims, self.secret, self.ttl)

    def url(self, subscriber_id: int, channel: str, notice_id: int | None = None) -> str:
        token = self.token(subscriber_id, channel, notice_id)
        return f"{self.public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={quote(token, safe='')}"


def read_unsubscribe(token: str, secret: Secret, *, now: float | None = None) -> UnsubscribeClaims:
    """The claims of an unsubscribe token; TokenError when it is not a genuine, live unsubscribe token."""
    claims = verify(token, secret, now=now)
    subscriber, channel, notice = claims.get("s"), claims.get("c"), claims.get("n")
    if claims.get("p") != UNSUBSCRIBE_PURPOSE or not isinstance(channel, str):
        raise MalformedToken("the token is not an unsubscribe token")
    if not _is_id(subscriber) or not (notice is None or _is_id(notice)):
        raise MalformedToken("the token's ids are not positive integers")
    return UnsubscribeClaims(subscriber, channel, notice)


def _is_id(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 < value <= MAX_ID


CONFIRM_PATH = "/confirm"
CONFIRM_PURPOSE = "confirm"
DEFAULT_CONFIRM_TTL = 30 * 86400.0  # a relief notice is confirmed within days, not months


@dataclass(frozen=True)
class ConfirmLinks:
    """Builds ``<public_url>/confirm?token=…`` links: a click confirms the delivery the token names."""

    public_url: str
    secret: SecretStr
    ttl: float = DEFAULT_CONFIRM_TTL

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfirmLinks:
        return cls(settings.server.public_url, settings.security.signing_secret)

    def token(self, delivery_id: int, *, now: float | None = None) -> str:
        return sign({"p": CONFIRM_PURPOSE, "d": delivery_id}, self.secret, self.ttl, now=now)

    def url(self, delivery_id: int, *, now: float | None = None) -> str:
        token = self.token(delivery_id, now=now)
        return f"{self.public_url.rstrip('/')}{CONFIRM_PATH}?token={quote(token, safe='')}"


def read_confirm(token: str, secret: Secret, *, now: float | None = None) -> int:
    """The delivery id of a confirmation token; TokenError when it is not a genuine, live one."""
    claims = verify(token, secret, now=now)
    delivery = claims.get("d")
    if claims.get("p") != CONFIRM_PURPOSE or not _is_id(delivery):
        raise MalformedToken("the token is not a confirmation token")
    return delivery
