"""Property tests: bounded, derandomised hypothesis runs, so CI sees the same examples every time."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

BOUNDED = settings(max_examples=100, deadline=None, derandomize=True, database=None)
SOME = settings(BOUNDED, max_examples=30)
FEW = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_TEXT = st.sampled_from(
    ["", " ", "\x00", "\x1b[2J", "\r\nTo: x", "\u202e", "\u2066", "\u200b", "\ufeff", "\ud800", "¹", "①", "１", "١",
     "💥" * 30, "a" * 300, "e\u0301", "<script>alert(1)</script>", "{{ 7*7 }}", "%00", "../../etc/passwd"]
)  # fmt: skip


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text, surrogates included, mixed with the strings that broke things before."""
    return st.one_of(st.text(max_size=max_size), HOSTILE_TEXT)


def integers() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64]))


def json_values(depth: int = 3) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), integers(), st.floats(allow_nan=False, allow_infinity=False), texts())
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts(10), inner, max_size=4)),
        max_leaves=12 if depth > 1 else 4,
    )
