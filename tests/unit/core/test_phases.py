"""What the panel is told about each job, as a table: each fact once, in its own field."""

from __future__ import annotations

from typing import Any

import pytest

from queue_manager.core.eta import Estimate
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, JobError, JobStatus, Lane, Progress
from queue_manager.core.phases import Standing, phase


def job(status: JobStatus, **fields: Any) -> Job:
    return Job(
        id=JobId("j1"),
        user=UserId("user001"),
        lane=Lane.NORMAL,
        status=status,
        seq=1,
        prompt={},
        created_at=0.0,
        **fields,
    )


QUEUED = job(JobStatus.QUEUED)
ETA = Estimate(40.04, 70.0)
REASON = "3 people who have not had a turn yet go first"

CASES = [
    pytest.param(
        QUEUED, 3, Standing(), ETA, REASON,
        {"status": "queued", "detail": "", "wait": None, "eta_start": 40.0, "eta_finish": 70.0,
         "reason": REASON},
        id="queued: place, times, and why others go first",
    ),
    pytest.param(
        QUEUED, 1, Standing(), ETA, REASON,
        {"status": "queued", "reason": None, "eta_start": 40.0},
        id="next to run: nobody goes first",
    ),
    pytest.param(
        QUEUED, 3, Standing(paused=True), ETA, None,
        {"wait": "paused", "eta_start": None, "eta_finish": None, "detail": ""},
        id="room paused: said once by the page, no times",
    ),
    pytest.param(
        QUEUED, None, Standing(paused=True, user_paused=True), None, None,
        {"wait": "user_paused", "eta_start": None, "detail": ""},
        id="this participant paused: not 'waiting for your running job'",
    ),
    pytest.param(
        QUEUED, 2, Standing(at_limit=True), ETA, None,
        {"wait": "own_job", "eta_start": 40.0},
        id="at the running limit: waits for their own job",
    ),
    pytest.param(
        QUEUED, 2, Standing(), None, None,
        {"eta_start": None, "eta_finish": None},
        id="no estimate",
    ),
    pytest.param(
        job(JobStatus.QUEUED, hold="held: no connected GPU has node types Foo"), None,
        Standing(), None, None,
        {"status": "held", "detail": "no connected GPU has node types Foo"},
        id="held: the reason without a second 'held'",
    ),
    pytest.param(
        job(JobStatus.RUNNING, worker=WorkerId("sim-1"), claimed_at=1.0), None, Standing(),
        Estimate(0, 12.0), None,
        {"status": "starting", "detail": "loading models", "worker": "sim-1", "eta_finish": 12.0},
        id="claimed, not started: the worker once, the phase as detail",
    ),
    pytest.param(
        job(JobStatus.RUNNING, worker=WorkerId("ep.0"), phase="GPU starting, usually about 90 s"),
        None, Standing(), None, None,
        {"status": "starting", "detail": "GPU starting, usually about 90 s"},
        id="a cold start's phase",
    ),
    pytest.param(
        job(JobStatus.RUNNING, worker=WorkerId("sim-1"), started_at=2.0,
            progress=Progress(value=6, max=8)),
        None, Standing(), Estimate(0, 3.0), None,
        {"status": "running", "detail": "", "worker": "sim-1",
         "progress": {"value": 6, "max": 8}, "eta_finish": 3.0},
        id="running: no sentence in detail (the page says 'Running on sim-1' once)",
    ),
    pytest.param(
        job(JobStatus.COMPLETED), None, Standing(), None, None,
        {"status": "completed", "detail": ""},
        id="done: the page says 'Done' once",
    ),
    pytest.param(
        job(JobStatus.FAILED, error=JobError(type="x", message="out of memory")), None,
        Standing(), None, None,
        {"status": "failed", "detail": "out of memory"},
        id="failed: the error",
    ),
    pytest.param(
        job(JobStatus.CANCELLED, error=JobError(type="c", message="cancelled by the instructor")),
        None, Standing(), None, None,
        {"status": "cancelled", "detail": "by the instructor"},
        id="cancelled by the instructor",
    ),
    pytest.param(
        job(JobStatus.CANCELLED, error=JobError(type="c", message="interrupted by its owner")),
        None, Standing(), None, None,
        {"status": "cancelled", "detail": ""},
        id="cancelled by the participant",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("the_job", "position", "standing", "eta", "reason", "expected"), CASES)
def test_each_fact_once_in_its_own_field(
    the_job: Job,
    position: int | None,
    standing: Standing,
    eta: Estimate | None,
    reason: str | None,
    expected: dict[str, Any],
) -> None:
    entry = phase(the_job, position, standing, eta, reason)
    assert {k: entry[k] for k in expected} == expected
    assert entry["prompt_id"] == "j1" and entry["position"] == position
