"""What the dashboard and a waiting participant read of an endpoint's cold starts."""

from __future__ import annotations

from queue_manager.core.endpoint_status import (
    KEPT_COLD_STARTS,
    UNMEASURED,
    EndpointPhase,
    EndpointStatus,
    starting_detail,
    typical_cold_start,
    with_cold_start,
)


def test_before_any_cold_start_was_measured_the_participant_reads_the_usual_range() -> None:
    assert starting_detail(()) == UNMEASURED
    assert typical_cold_start(()) is None


def test_the_usual_cold_start_is_the_median_of_the_measured_ones() -> None:
    samples = (40.0, 200.0, 50.0)
    assert typical_cold_start(samples) == 50.0
    assert starting_detail(samples) == "GPU starting, usually about 50 s"
    assert starting_detail((150.0,)) == "GPU starting, usually about 2 min"


def test_only_the_recent_cold_starts_are_kept() -> None:
    samples: tuple[float, ...] = ()
    for n in range(KEPT_COLD_STARTS + 3):
        samples = with_cold_start(samples, float(n))
    assert len(samples) == KEPT_COLD_STARTS
    assert samples[-1] == float(KEPT_COLD_STARTS + 2)


def test_the_shown_status_names_its_state_and_its_last_and_usual_cold_start() -> None:
    status = EndpointStatus("cloud", EndpointPhase.FAILING, "no answer", 10.0, 1, (30.0, 90.0))
    shown = status.shown()
    assert shown["state"] == "failing"
    assert shown["reason"] == "no answer"
    assert shown["last_cold_start"] == 90.0
    assert shown["typical_cold_start"] == 60.0
