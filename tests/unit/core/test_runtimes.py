"""Run-time shapes and the expected-duration model, as tables."""

from __future__ import annotations

import copy

import pytest

from queue_manager.core.jobs import ApiPrompt
from queue_manager.core.prompts import parse_prompt
from queue_manager.core.runtimes import (
    DEFAULT_RUN_SECONDS,
    UNKNOWN_SHAPE,
    RunHistory,
    Sample,
    Shape,
    fitted,
    gpu_key,
    parse_shape,
    run_sample,
    shape_of,
)
from tests.support.graphs import sampler


def graph(steps: int = 20, **changes: int) -> ApiPrompt:
    raw = copy.deepcopy(sampler(steps))
    raw["5"]["inputs"].update(changes)
    return parse_prompt(raw, max_nodes=100)


def test_the_seed_and_the_text_do_not_change_a_shape() -> None:
    other = graph()
    other["3"]["inputs"]["seed"] = 99
    other["6"]["inputs"]["text"] = "a dog"
    assert shape_of(other) == shape_of(graph())


def test_steps_are_the_steps_and_sizes_name_the_family() -> None:
    assert shape_of(graph(40)).steps == 40
    assert shape_of(graph(40)).family == shape_of(graph(8)).family
    assert shape_of(graph(width=512)).family != shape_of(graph()).family
    assert shape_of(graph(batch_size=4)).family != shape_of(graph()).family


def test_links_and_booleans_are_not_numbers_of_work() -> None:
    g = graph(10)
    g["3"]["inputs"]["steps"] = ["99", 0]  # a link from another node
    assert shape_of(g).steps == 0
    g["3"]["inputs"]["steps"] = True
    assert shape_of(g).steps == 0


@pytest.mark.parametrize(
    ("raw", "shape"),
    [
        ("abc123:20", Shape("abc123", 20)),
        ("abc123:0", Shape("abc123", 0)),
        (None, UNKNOWN_SHAPE),
        ("", UNKNOWN_SHAPE),
        ("abc123", UNKNOWN_SHAPE),
        ("abc123:-1", UNKNOWN_SHAPE),
        (":20", UNKNOWN_SHAPE),
    ],
)
def test_a_stored_shape_reads_back_or_is_unknown(raw: str | None, shape: Shape) -> None:
    assert parse_shape(raw) == shape


def test_a_shape_key_reads_back_as_the_same_shape() -> None:
    shape = shape_of(graph(33))
    assert parse_shape(shape.key()) == shape


@pytest.mark.parametrize(
    ("worker", "times", "expected"),
    [
        pytest.param("gpu1", (100.0, 101.0, 130.0), ("gpu1", 30.0), id="pull: claim to finish"),
        pytest.param("rp.0", (100.0, 190.0, 200.0), ("rp", 10.0), id="endpoint: start to finish"),
        pytest.param("rp.1", (100.0, None, 200.0), None, id="endpoint never started"),
        pytest.param("gpu1", (None, None, 130.0), None, id="never claimed"),
        pytest.param("gpu1", (100.0, 101.0, None), None, id="not finished"),
        pytest.param("gpu1", (100.0, 101.0, 99.0), None, id="clock went back"),
    ],
)
def test_a_completed_job_gives_one_sample_of_its_gpu(
    worker: str,
    times: tuple[float | None, float | None, float | None],
    expected: tuple[str, float] | None,
) -> None:
    found = run_sample(worker, Shape("f", 7), *times)
    if expected is None:
        assert found is None
    else:
        assert found == (expected[0], Sample(7, expected[1]))


def test_endpoint_slots_share_their_endpoints_history() -> None:
    assert gpu_key("runpod.0") == gpu_key("runpod.3") == "runpod"
    assert gpu_key("gpu1") == "gpu1"


@pytest.mark.parametrize(
    ("raw", "sample"),
    [("12.500 20", Sample(20, 12.5)), ("3.2 0", Sample(0, 3.2)), ("7", Sample(0, 7.0)),
     ("x 1", None), ("1 x", None)],
)  # fmt: skip
def test_samples_encode_and_decode(raw: str, sample: Sample | None) -> None:
    assert Sample.decode(raw) == sample
    if sample is not None:
        assert Sample.decode(sample.encode()) == sample


def s(*pairs: tuple[int, float]) -> tuple[Sample, ...]:
    return tuple(Sample(steps, seconds) for steps, seconds in pairs)


@pytest.mark.parametrize(
    ("samples", "steps", "expected"),
    [
        pytest.param((), 20, None, id="nothing known"),
        pytest.param(s((20, 10), (20, 12), (20, 11)), 20, 11.0, id="same steps: their median"),
        pytest.param(s((10, 6), (30, 14)), 20, 10.0, id="a line through the step counts"),
        pytest.param(s((10, 6), (30, 14)), 40, 18.0, id="the line beyond what was seen"),
        pytest.param(s((20, 10)), 40, 20.0, id="one step count: scaled by steps"),
        pytest.param(s((0, 4), (0, 6)), 0, 5.0, id="no steps at all: the median"),
        pytest.param(s((20, 10)), 0, 10.0, id="no steps asked: the median"),
        pytest.param(s((10, 30), (30, 5)), 20, 17.5, id="a falling line is noise: the median"),
        pytest.param(
            s((20, 10), (20, 11), (20, 12), (5, 1), (40, 40)),
            20,
            11.0,
            id="enough same-steps samples beat the line",
        ),
    ],
)
def test_a_run_time_is_fitted_from_comparable_samples(
    samples: tuple[Sample, ...], steps: int, expected: float | None
) -> None:
    found = fitted(samples, steps)
    assert found == (None if expected is None else pytest.approx(expected))


HISTORY = RunHistory(
    exact={("gpu1", "fam"): s((20, 10.0))},
    family={"fam": s((20, 16.0)), "other": s((20, 50.0))},
    gpu={"gpu1": s((20, 30.0)), "gpu2": s((20, 40.0))},
    recent=s((20, 60.0)),
)


@pytest.mark.parametrize(
    ("history", "gpu", "shape", "expected"),
    [
        pytest.param(HISTORY, "gpu1", Shape("fam", 20), 10.0, id="this gpu, this family"),
        pytest.param(HISTORY, "gpu2", Shape("fam", 20), 16.0, id="this family, any gpu"),
        pytest.param(HISTORY, "gpu2", Shape("new", 20), 40.0, id="this gpu, any job"),
        pytest.param(HISTORY, "gpu3", Shape("new", 20), 60.0, id="any job"),
        pytest.param(HISTORY, "gpu3", UNKNOWN_SHAPE, 60.0, id="unknown shape: any job"),
        pytest.param(HISTORY, "gpu1", Shape("fam", 40), 20.0, id="scaled by steps"),
        pytest.param(RunHistory(), "gpu1", Shape("fam", 20), DEFAULT_RUN_SECONDS, id="nothing"),
    ],
)
def test_the_most_specific_history_decides(
    history: RunHistory, gpu: str, shape: Shape, expected: float
) -> None:
    assert history.expected(gpu, shape) == pytest.approx(expected)
