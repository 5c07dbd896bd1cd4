"""The Lua scripts held to the job state machine (`core.lifecycle`) for every (state, action)."""

from __future__ import annotations

import contextlib

import pytest

from queue_manager.core.errors import InvalidTransition, LeaseLost
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import JobError, JobStatus
from queue_manager.core.lifecycle import Action, next_status
from queue_manager.settings import Settings
from queue_manager.store import JobStore, WorkerStore
from tests.support.clock import FakeClock
from tests.support.jobs import EVERYTHING, new_job, user

S = JobStatus


async def _job_in(jobs: JobStore, workers: WorkerStore, status: S) -> tuple[JobId, WorkerId]:
    """A job brought into `status` through the real scripts, and the worker involved."""
    w = WorkerId("gpu1")
    await workers.register(w, EVERYTHING, {"gpu": "test"})
    job = await jobs.submit(new_job(user(1)))
    if status is S.QUEUED:
        return job.id, w
    await jobs.claim(w)
    if status is S.COMPLETED:
        await jobs.complete(job.id, w, 1)
    elif status is S.FAILED:
        await jobs.fail(job.id, w, 1, JobError(type="x", message="x"))
    elif status is S.CANCELLED:
        await jobs.cancel(job.id, "x")
    return job.id, w


async def _apply(
    jobs: JobStore, settings: Settings, clock: FakeClock, job_id: JobId, w: WorkerId, a: Action
) -> None:
    if a is Action.CLAIM:
        claimed = await jobs.claim(w)
        if claimed is None or claimed.id != job_id:
            raise InvalidTransition(job_id, "?", "claim")
    elif a is Action.COMPLETE:
        await jobs.complete(job_id, w, 1)
    elif a is Action.FAIL:
        await jobs.fail(job_id, w, 1, JobError(type="x", message="x"))
    elif a is Action.CANCEL:
        await jobs.cancel(job_id, "x")
    elif a is Action.EXPIRE:
        clock.advance(settings.lease_seconds + 1)
        await jobs.reap(10_000)
    elif a is Action.REJECT and not await jobs.reject(job_id, JobError(type="x", message="x")):
        raise InvalidTransition(job_id, "?", "reject")


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED])
@pytest.mark.parametrize("action", list(Action))
async def test_scripts_follow_the_table(
    jobs: JobStore,
    workers: WorkerStore,
    settings: Settings,
    clock: FakeClock,
    status: S,
    action: Action,
) -> None:
    job_id, w = await _job_in(jobs, workers, status)
    expected = next_status(status, action, attempts=1, max_attempts=settings.max_attempts)
    with contextlib.suppress(InvalidTransition, LeaseLost):
        await _apply(jobs, settings, clock, job_id, w, action)
    after = (await jobs.get(job_id)).status
    assert after == (expected or status)
