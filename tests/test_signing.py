"""Signed link tokens: genuine ones verify, every kind of forgery or age is refused with its own error."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from notifier.config import Settings
from notifier.signing import (
    ExpiredToken,
    MalformedToken,
    TamperedToken,
    TokenError,
    UnsubscribeLinks,
    read_unsubscribe,
    sign,
    verify,
)

SECRET = SecretStr("s3cret-for-tests")
NOW = 1_700_000_000.0


def test_round_trip_keeps_the_claims() -> None:
    token = sign({"s": 42, "c": "email", "topic": "空气质量"}, SECRET, 3600, now=NOW)

    assert verify(token, SECRET, now=NOW + 10) == {"s": 42, "c": "email", "topic": "空气质量"}
    assert verify(token, "s3cret-for-tests", now=NOW) == verify(token, b"s3cret-for-tests", now=NOW)


def test_token_is_url_safe() -> None:
    token = sign({"s": 1, "text": "?&=/+ 中文"}, SECRET, 60)

    assert all(c.isalnum() or c in "-_." for c in token)


def test_expired_token_is_refused() -> None:
    token = sign({"s": 1}, SECRET, 60, now=NOW)

    assert verify(token, SECRET, now=NOW + 59) == {"s": 1}
    with pytest.raises(ExpiredToken):
        verify(token, SECRET, now=NOW + 60)


def _reencode(token: str, change: dict[str, object]) -> str:
    body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(claims | change).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: _reencode(t, {"s": 2}),  # another subscriber
        lambda t: _reencode(t, {"exp": 4_000_000_000}),  # a longer life
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # edited signature
        lambda t: t.split(".")[0] + "." + sign({"s": 1}, SECRET, 60).split(".")[1],  # signature of another token
    ],
)
def test_tampered_token_is_refused(forge: object) -> None:
    token = sign({"s": 1}, SECRET, 60, now=NOW)

    with pytest.raises(TamperedToken):
        verify(forge(token), SECRET, now=NOW)  # type: ignore[operator]


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_a_signature_spelt_with_other_spare_bits_is_refused() -> None:
    """32 bytes take 43 base64 characters, whose last carries 2 unused bits: four spellings, one signature."""
    token = sign({"s": 42, "c": "email"}, SECRET, 3600, now=NOW)
    last = B64URL.index(token[-1])
    for spare in (1, 2, 3):
        respelt = token[:-1] + B64URL[last ^ spare]
        assert base64.urlsafe_b64decode(respelt.split(".")[1] + "=") == base64.urlsafe_b64decode(
            token.split(".")[1] + "="
        )
        with pytest.raises(TamperedToken):
            verify(respelt, SECRET, now=NOW)


def test_sign_refuses_claims_too_long_for_a_link() -> None:
    with pytest.raises(ValueError, match="longer than 2048"):
        sign({"text": "x" * 1600}, SECRET, 60)
    assert verify(sign({"text": "x" * 1400}, SECRET, 60, now=NOW), SECRET, now=NOW) == {"text": "x" * 1400}


def test_other_secret_is_refused() -> None:
    token = sign({"s": 1}, SECRET, 60)

    with pytest.raises(TamperedToken):
        verify(token, "another-secret")


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "é.é", "!!!.???", "x" * 3000 + ".y"])
def test_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(MalformedToken):
        verify(token, SECRET)


def test_signed_payload_that_is_not_json_is_malformed() -> None:
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b"not json").rstrip(b"=").decode()
    mac = hmac.new(b"s3cret-for-tests", b"notifier-signed-link-v1." + body.encode(), hashlib.sha256).digest()
    token = f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    with pytest.raises(MalformedToken):
        verify(token, SECRET)


def test_errors_share_one_base_class() -> None:
    assert issubclass(MalformedToken, TokenError) and issubclass(ExpiredToken, TokenError)
    assert issubclass(TokenError, ValueError)


@pytest.mark.parametrize(
    ("payload", "secret", "ttl"), [({"exp": 1}, SECRET, 60), ({"s": 1}, "", 60), ({"s": 1}, SECRET, 0)]
)
def test_sign_refuses_bad_arguments(payload: dict[str, object], secret: str | SecretStr, ttl: float) -> None:
    with pytest.raises(ValueError):
        sign(payload, secret, ttl)


def test_unsubscribe_link_carries_subscriber_channel_and_notice() -> None:
    settings = Settings.model_validate({"server": {"public_url": "https://notify.example.test/"}})
    settings.security.signing_secret = SECRET
    url = UnsubscribeLinks.from_settings(settings).url(42, "email", 7)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "notify.example.test", "/unsubscribe")
    claims = read_unsubscribe(parse_qs(parts.query)["token"][0], SECRET)
    assert (claims.subscriber_id, claims.channel, claims.notice_id) == (42, "email", 7)


@pytest.mark.parametrize(
    "payload",
    [
        {"s": 42, "c": "email"},  # no purpose: a token signed for something else
        {"p": "unsub", "s": "42", "c": "email"},
        {"p": "unsub", "s": True, "c": "email"},
        {"p": "unsub", "s": 0, "c": "email"},
        {"p": "unsub", "s": 42},
        {"p": "unsub", "s": 42, "c": "email", "n": -1},
    ],
)
def test_read_unsubscribe_refuses_other_tokens(payload: dict[str, object]) -> None:
    with pytest.raises(MalformedToken):
        read_unsubscribe(sign(payload, SECRET, 60), SECRET)
