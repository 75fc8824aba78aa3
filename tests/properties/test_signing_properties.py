"""Signed links, in general: a genuine token round-trips, any edit is refused, and nothing else ever escapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.domain.models import MAX_ID
from notifier.signing import (
    MAX_TOKEN_LENGTH,
    ExpiredToken,
    TokenError,
    read_unsubscribe,
    sign,
    verify,
)
from tests.properties import BOUNDED, integers, json_values, texts

NOW = 1_800_000_000.0
secrets = st.one_of(st.text(min_size=1, max_size=40), st.binary(min_size=1, max_size=40))
claim_names = st.text(max_size=10).filter(lambda name: name != "exp")
claims = st.dictionaries(claim_names, json_values(depth=2), max_size=5)
small_claims = st.dictionaries(claim_names, json_values(depth=1), max_size=3)  # always short enough for a link
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@BOUNDED
@given(claims=claims, secret=secrets, ttl=st.floats(min_value=1, max_value=10**9))
def test_a_genuine_token_carries_its_claims(claims: dict[str, Any], secret: str | bytes, ttl: float) -> None:
    try:
        token = sign(claims, secret, ttl, now=NOW)
    except ValueError:
        assert len(json.dumps(claims)) > MAX_TOKEN_LENGTH // 2  # only claims too long for a link are refused
        return
    assert verify(token, secret, now=NOW) == claims
    with pytest.raises(ExpiredToken):
        verify(token, secret, now=NOW + ttl + 1)


@BOUNDED
@given(
    claims=small_claims,
    secret=secrets,
    position=st.integers(min_value=0),
    replacement=st.sampled_from(TOKEN_ALPHABET),
    near_end=st.booleans(),  # the last characters carry the spare bits of base64
)
def test_any_edit_of_a_token_is_refused(
    claims: dict[str, Any], secret: str | bytes, position: int, replacement: str, near_end: bool
) -> None:
    token = sign(claims, secret, 3600, now=NOW)
    index = len(token) - 1 - position % 4 if near_end else position % len(token)
    edited = token[:index] + replacement + token[index + 1 :]
    if edited == token:
        return
    with pytest.raises(TokenError):
        verify(edited, secret, now=NOW)


@BOUNDED
@given(claims=small_claims, secret=secrets, other=secrets)
def test_a_token_signed_with_another_secret_is_refused(
    claims: dict[str, Any], secret: str | bytes, other: str | bytes
) -> None:
    if (secret.encode() if isinstance(secret, str) else secret) == (
        other.encode() if isinstance(other, str) else other
    ):
        return
    with pytest.raises(TokenError):
        verify(sign(claims, secret, 3600, now=NOW), other, now=NOW)


@BOUNDED
@given(text=st.one_of(st.text(max_size=300), st.text(alphabet=TOKEN_ALPHABET, max_size=300)), secret=secrets)
def test_arbitrary_text_is_refused_as_a_token_error_and_nothing_else(text: str, secret: str | bytes) -> None:
    try:
        verify(text, secret, now=NOW)
    except TokenError:
        pass


@BOUNDED
@given(
    claims=st.dictionaries(
        st.sampled_from(["p", "s", "c", "n", "x"]),
        st.one_of(st.sampled_from(["unsub", "email", "sms"]), integers(), st.floats(), st.booleans(), texts(10)),
        max_size=5,
    )
)
def test_an_unsubscribe_claim_is_either_refused_or_names_ids_the_store_can_hold(claims: dict[str, Any]) -> None:
    token = sign(claims, "secret", 3600, now=NOW)
    try:
        read = read_unsubscribe(token, "secret", now=NOW)
    except TokenError:
        return
    assert 0 < read.subscriber_id <= MAX_ID and isinstance(read.channel, str)
    assert read.notice_id is None or 0 < read.notice_id <= MAX_ID
