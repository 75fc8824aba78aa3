"""``bench.workers.ceiling``: the most N worker processes can give over the measured one-process rate on a
machine whose cores they share with the database server."""

from __future__ import annotations

import math

import pytest

from bench.workers import ceiling


def test_a_process_waiting_on_the_database_leaves_room_a_second_one_fills() -> None:
    # the round of 2026-12-02: one process at 5,499 messages/s, 134.7 us a message of its own time and 91.3 of
    # its backends'; two processes then measured 1.342 x, above the 1.19 the earlier model allowed
    two = ceiling(2, 2, 134.7, 91.3, 5499)
    assert 1.342 < two < 1.7
    assert two == pytest.approx(2 / (134.7 + 91.3) * 1e6 / 5499)  # all the machine's cores, shared with the server


def test_each_process_is_held_to_a_core() -> None:
    # a database that costs nothing: processes, not cores shared with the server, bound the gain
    assert ceiling(2, 8, 100.0, 0.0, 10_000) == pytest.approx(2.0)
    assert ceiling(4, 2, 100.0, 0.0, 10_000) == pytest.approx(2.0)  # two cores: two processes' worth at most


def test_no_measure_no_ceiling() -> None:
    assert math.isnan(ceiling(2, 2, 0.0, 91.3, 5499))
    assert math.isnan(ceiling(2, 2, 134.7, 91.3, 0.0))
