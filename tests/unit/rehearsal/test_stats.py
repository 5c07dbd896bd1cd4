"""The rehearsal's figures: percentiles, run order and fairness, GPU busy time, memory."""

from __future__ import annotations

import pytest

from queue_manager.rehearsal.stats import (
    JobRun,
    Problem,
    fairness,
    gpu_busy,
    memory,
    percentile,
    problems_by_kind,
    rounds,
    run_order,
    spread,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 90, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # order of arrival does not matter
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90, 9.1),
        ([1.0, 2.0, 3.0], 100, 3.0),
        ([1.0, 2.0, 3.0], 0, 1.0),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_no_values_have_no_percentile_and_no_spread() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    assert spread([]) is None


def test_spread_gives_count_p50_p90_and_max() -> None:
    s = spread([3.0, 1.0, 2.0])
    assert s is not None
    assert (s.n, s.p50, s.max) == (3, 2.0, 3.0)
    assert s.p90 == pytest.approx(2.8)


def job(user: str, number: int, queued: float, started: float | None, **kw: object) -> JobRun:
    return JobRun(user, number, "socket", queued=queued, started=started, **kw)  # type: ignore[arg-type]


def sequence(users: str, queued: float = 0.0) -> list[JobRun]:
    """Jobs started one a second in the order the letters say, all queued at `queued`."""
    count: dict[str, int] = {}
    found = []
    for i, user in enumerate(users.split()):
        count[user] = count.get(user, 0) + 1
        found.append(job(user, count[user], queued, 1.0 + i))
    return found


def test_time_to_image_needs_both_ends_and_no_problem() -> None:
    assert JobRun("a", 1, "socket", submitted=1.0, image=3.5).time_to_image == 2.5
    assert JobRun("a", 1, "socket", submitted=1.0).time_to_image is None
    failed = JobRun("a", 1, "socket", 1.0, 3.0, problem=Problem("failed", "a", "boom"))
    assert failed.time_to_image is None


def test_run_order_is_by_start_and_leaves_out_jobs_that_never_started() -> None:
    jobs = [job("b", 1, 0, 2.0), job("a", 1, 0, 1.0), job("c", 1, 0, None)]
    assert [j.user for j in run_order(jobs)] == ["a", "b"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("a b c a b c", [["a", "b", "c"], ["a", "b", "c"]]),
        ("a a a", [["a"], ["a"], ["a"]]),
        ("a b b a", [["a", "b"], ["b", "a"]]),
        ("", []),
    ],
)
def test_rounds_end_before_a_user_comes_again(order: str, expected: list[list[str]]) -> None:
    assert rounds(sequence(order)) == expected


@pytest.mark.parametrize(
    ("order", "most", "ahead", "behind", "overtaken"),
    [
        # round-robin: each waiting user is passed by anyone at most once
        ("a b c a b c a b c", 1, "a", "b", 0),
        ("b a c b a c", 1, "b", "a", 0),
        # c served twice while b waited
        ("a b c c b a", 2, "c", "b", 2),
        # FIFO by user: a's three jobs before b's first one
        ("a a a b b b", 3, "a", "b", 1),
        ("a a b", 2, "a", "b", 1),
        ("a", 0, None, None, 0),
    ],
)
def test_fairness_counts_jobs_one_got_ahead_of_another_while_both_waited(
    order: str, most: int, ahead: str | None, behind: str | None, overtaken: int
) -> None:
    f = fairness(sequence(order))
    assert (f.most_ahead, f.ahead, f.behind, f.overtaken) == (most, ahead, behind, overtaken)
    assert f.round_robin is (most <= 1)


def test_jobs_started_before_someone_queued_are_not_counted_against_them() -> None:
    early = sequence("a a a")  # a ran three jobs, then b arrived
    late = job("b", 1, queued=10.0, started=11.0)
    assert fairness([*early, late]).most_ahead == 0


def test_a_users_own_previous_start_ends_what_they_count_as_overtaking() -> None:
    # b's second job was queued at 0, but b was served at 2: only a's start at 3 passes it
    jobs = sequence("a b a b")
    assert fairness(jobs).most_ahead == 1


def test_gpu_busy_counts_overlaps_once_and_lists_idle_workers() -> None:
    jobs = [
        job("a", 1, 0, 0.0, finished=4.0, worker="gpu-1"),
        job("b", 1, 0, 2.0, finished=6.0, worker="gpu-1"),  # overlaps: 0..6 busy
        job("c", 1, 0, 8.0, finished=9.0, worker="gpu-2"),
        job("d", 1, 0, None, worker="gpu-2"),  # never started
    ]
    busy = {b.worker: b for b in gpu_busy(jobs, ["gpu-1", "gpu-2", "gpu-3"], 0.0, 10.0)}
    assert (busy["gpu-1"].jobs, busy["gpu-1"].seconds, busy["gpu-1"].share) == (2, 6.0, 0.6)
    assert (busy["gpu-2"].jobs, busy["gpu-2"].seconds) == (1, 1.0)
    assert (busy["gpu-3"].jobs, busy["gpu-3"].seconds, busy["gpu-3"].share) == (0, 0.0, 0.0)


def test_gpu_busy_is_clipped_to_the_window() -> None:
    jobs = [job("a", 1, 0, -5.0, finished=5.0, worker="w")]
    (busy,) = gpu_busy(jobs, [], 0.0, 10.0)
    assert busy.seconds == 5.0


def test_memory_keeps_start_peak_and_end() -> None:
    m = memory([(0.0, 100.0), (1.0, 180.0), (2.0, 120.0)])
    assert m is not None
    assert (m.start, m.peak, m.end) == (100.0, 180.0, 120.0)
    assert memory([]) is None


def test_problems_are_grouped_by_kind_most_first() -> None:
    found = [
        Problem("timeout", "a", "x"),
        Problem("refused", "b", "y"),
        Problem("refused", "c", "z"),
    ]
    grouped = problems_by_kind(found)
    assert list(grouped) == ["refused", "timeout"]
    assert [p.user for p in grouped["refused"]] == ["b", "c"]
