"""A test that needs a real peer may skip on a developer's machine, never in CI."""

from __future__ import annotations

import pytest

EXAMPLE = """
import pytest

@pytest.mark.peer("kannel")
def test_needs_kannel():
    pytest.skip("bearerbox is not installed")

def test_plain_skip():
    pytest.skip("not about peers")
"""


@pytest.mark.parametrize(("required", "failed", "skipped"), [("1", 1, 1), ("", 0, 2)])
def test_peer_skips_fail_when_peers_are_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, failed: int, skipped: int
) -> None:
    monkeypatch.setenv("NOTIFIER_REQUIRE_PEERS", required)
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    peer(name): needs a peer\n"
    )
    pytester.makepyfile(EXAMPLE)
    result = pytester.runpytest("-p", "tests.peers")
    result.assert_outcomes(failed=failed, skipped=skipped)
    if failed:
        result.stdout.fnmatch_lines(["*peer kannel is required*bearerbox is not installed*"])
