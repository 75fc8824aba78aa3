"""``--record-database-tests`` lists the tests that opened the run's database, in one process or several.

CI runs on PostgreSQL only the tests this list names (docs/storage.md, "Tests on PostgreSQL"), so a list that
came out empty or partial under pytest-xdist would pass CI while leaving tests unrun on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

CONFTEST = """
from tests.databases import (
    _drop_test_databases,
    database_url,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_sessionfinish,
    pytest_testnodedown,
    pytest_unconfigure,
)
"""

EXAMPLE = """
import pytest
from tests.databases import database_url

@pytest.mark.parametrize("n", range(6))
def test_opens_the_database(tmp_path, n):
    assert database_url(tmp_path).startswith("sqlite:///")

@pytest.mark.parametrize("n", range(6))
def test_touches_no_database(n):
    pass
"""


@pytest.mark.parametrize("processes", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_the_record_names_exactly_the_database_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, processes: list[str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    monkeypatch.setenv("NOTIFIER_TEST_DB", "sqlite")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_example=EXAMPLE)
    record = pytester.path / "database-tests.txt"
    result = pytester.runpytest_subprocess(*processes, f"--record-database-tests={record}")
    result.assert_outcomes(passed=12)
    recorded = sorted(record.read_text(encoding="utf-8").splitlines())
    assert recorded == sorted(f"test_example.py::test_opens_the_database[{n}]" for n in range(6))
