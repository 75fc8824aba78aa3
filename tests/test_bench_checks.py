"""The SMS benchmarks' check of what the sink got: a send tried again after a timeout (at least once, by design)
passes; a lost message or a send the engine did not record as a try fails the run."""

from __future__ import annotations

import pytest

from bench.sinks import recipient
from bench.sms import check_sends


@pytest.mark.parametrize(
    ("got", "reached", "tries", "error"),
    [
        (20_000, 20_000, 20_000, None),  # each message once
        (20_182, 20_000, 20_182, None),  # 182 tries timed out and were sent again
        (20_182, 20_000, 20_200, None),  # 18 more tries never reached the sink (refused connections)
        (20_000, 19_999, 20_001, "messages for 19999 of 20000 residents"),  # one lost, one sent twice
        (19_999, 19_999, 20_000, "messages for 19999 of 20000 residents"),  # one lost
        (20_001, 20_000, 20_000, "more than the 20000 tries"),  # a duplicate no try explains
    ],
)
def test_a_retry_passes_a_loss_or_an_unexplained_duplicate_fails(
    got: int, reached: int, tries: int, error: str | None
) -> None:
    if error is None:
        check_sends(got, reached, 20_000, tries)
    else:
        with pytest.raises(RuntimeError, match=error):
            check_sends(got, reached, 20_000, tries)


@pytest.mark.parametrize(
    ("query", "to"),
    [
        ("username=bench&to=%2B8613900000001&text=x", "%2B8613900000001"),
        ("to=%2B8613900000002&text=x", "%2B8613900000002"),
        ("username=bench&text=a%26to%3D1&to=%2B8613900000003", "%2B8613900000003"),
        ("username=bench&text=x", ""),
    ],
)
def test_the_sink_tells_recipients_by_their_to(query: str, to: str) -> None:
    assert recipient(query) == to
