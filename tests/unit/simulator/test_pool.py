"""The replica pool's pure parts: the round-robin turn and the options it refuses."""

from __future__ import annotations

import pytest

from worker.simulator.pool import PoolOptions, RoundRobin


def test_turns_go_round_and_round() -> None:
    turns = RoundRobin(3)

    assert [turns.next() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize(
    "options",
    [{"replicas": 0}, {"cold_start": -1}, {"idle_stop": 0}, {"idle_stop": -2}],
)
def test_options_that_cannot_work_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"replica|cold start|idle stop"):
        PoolOptions(**options)  # type: ignore[arg-type]
