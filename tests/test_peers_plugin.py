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


SQLITE_ONLY_EXAMPLE = """
import pytest

pytestmark = [pytest.mark.peer("kannel"), pytest.mark.sqlite_only("reads the SQLite file behind the worker")]

def test_reads_the_file():
    pass

def test_peer_missing():
    pytest.skip("bearerbox is not installed")
"""

SQLITE_ONLY_CONFTEST = """
from tests.databases import pytest_addoption, pytest_collection_modifyitems, pytest_configure, pytest_unconfigure
"""


@pytest.mark.parametrize(("db", "passed", "failed", "skipped"), [("postgres", 0, 0, 2), ("sqlite", 1, 1, 0)])
def test_a_sqlite_only_skip_on_postgres_is_no_missing_peer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, db: str, passed: int, failed: int, skipped: int
) -> None:
    monkeypatch.setenv("NOTIFIER_REQUIRE_PEERS", "1")
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    peer(name): needs a peer\n"
        "    sqlite_only(reason): SQLite only\n"
    )
    pytester.makeconftest(SQLITE_ONLY_CONFTEST)
    pytester.makepyfile(SQLITE_ONLY_EXAMPLE)
    result = pytester.runpytest("-p", "tests.peers", f"--db={db}", "-rs")
    result.assert_outcomes(passed=passed, failed=failed, skipped=skipped)
    if db == "postgres":
        result.stdout.fnmatch_lines(["*SQLite only: reads the SQLite file behind the worker*"])
    else:
        result.stdout.fnmatch_lines(["*peer kannel is required*bearerbox is not installed*"])


XFAIL_EXAMPLE = """
import pytest

@pytest.mark.peer("kannel")
@pytest.mark.xfail(reason="a known defect", strict=False)
def test_known_defect():
    assert False, "the defect"

@pytest.mark.peer("kannel")
@pytest.mark.xfail(reason="a known defect", strict=False)
def test_peer_missing_in_a_marked_test():
    pytest.skip("bearerbox is not installed")
"""


def test_an_expected_failure_is_no_missing_peer(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer test marked as a known defect ran with its peer and failed as expected: not a skip for want of the
    peer. One that skips inside still is."""
    monkeypatch.setenv("NOTIFIER_REQUIRE_PEERS", "1")
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    peer(name): needs a peer\n"
    )
    pytester.makepyfile(XFAIL_EXAMPLE)
    result = pytester.runpytest("-p", "tests.peers")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*peer kannel is required*bearerbox is not installed*"])
