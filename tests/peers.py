"""Tests that need a real third-party peer (Kannel, CUPS, PostgreSQL, Chromium, ...).

Mark them ``@pytest.mark.peer("kannel")`` and skip with ``pytest.skip(...)`` when the peer is absent.
With ``NOTIFIER_REQUIRE_PEERS=1`` (set by CI, which installs every peer) such a skip becomes a failure,
so a missing peer can never pass silently. A test marked ``sqlite_only`` that a PostgreSQL run skips for that
(``tests.databases``) is not missing a peer.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

SQLITE_ONLY = "SQLite only: "  # tests.databases.SQLITE_ONLY (not imported: that module is no plugin)


def peers_required() -> bool:
    return os.environ.get("NOTIFIER_REQUIRE_PEERS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("peer")
    if peers_required() and marker is not None and report.skipped:
        if hasattr(report, "wasxfail"):  # an expected failure: it ran, with its peer, and failed as it was marked to
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        sqlite_only = item.get_closest_marker("sqlite_only") is not None
        if sqlite_only and reason.removeprefix("Skipped: ").startswith(SQLITE_ONLY):
            return
        report.outcome = "failed"
        peer = marker.args[0] if marker.args else "?"
        report.longrepr = f"peer {peer} is required (NOTIFIER_REQUIRE_PEERS=1) but the test skipped: {reason}"
