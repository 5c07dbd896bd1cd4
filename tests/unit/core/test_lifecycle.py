"""The state machine as a table, and the Lua scripts held to it for every (state, action)."""

from __future__ import annotations

import contextlib

import pytest

from queue_manager.core.errors import InvalidTransition, LeaseLost
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import JobError, JobStatus, Lane
from queue_manager.core.lifecycle import Action, next_status
from queue_manager.service.queue import QueueService
from tests.conftest import FakeClock, add_worker, prompt, user

S = JobStatus


@pytest.mark.parametrize(
    ("status", "action", "attempts", "expected"),
    [
        (S.QUEUED, Action.CLAIM, 0, S.RUNNING),
        (S.QUEUED, Action.CANCEL, 0, S.CANCELLED),
        (S.QUEUED, Action.COMPLETE, 0, None),
        (S.QUEUED, Action.EXPIRE, 0, None),
        (S.RUNNING, Action.COMPLETE, 1, S.COMPLETED),
        (S.RUNNING, Action.FAIL, 1, S.FAILED),
        (S.RUNNING, Action.CANCEL, 1, S.CANCELLED),
        (S.RUNNING, Action.EXPIRE, 1, S.QUEUED),
        (S.RUNNING, Action.EXPIRE, 2, S.QUEUED),
        (S.RUNNING, Action.EXPIRE, 3, S.FAILED),
        (S.RUNNING, Action.CLAIM, 1, None),
        *[(final, a, 1, None) for final in (S.COMPLETED, S.FAILED, S.CANCELLED) for a in Action],
    ],
)
def test_next_status(status: S, action: Action, attempts: int, expected: S | None) -> None:
    assert next_status(status, action, attempts=attempts, max_attempts=3) == expected


async def _job_in(svc: QueueService, clock: FakeClock, status: S) -> tuple[JobId, WorkerId]:
    """A job brought into `status` through the real scripts, and the worker involved."""
    w = await add_worker(svc)
    job = await svc.submit(user(1), Lane.NORMAL, prompt())
    if status is S.QUEUED:
        return job.id, w
    await svc.jobs.claim(w)
    if status is S.COMPLETED:
        await svc.jobs.complete(job.id, w, 1, [])
    elif status is S.FAILED:
        await svc.jobs.fail(job.id, w, 1, JobError(type="x", message="x"))
    elif status is S.CANCELLED:
        await svc.jobs.cancel(job.id, "x")
    return job.id, w


async def _apply(
    svc: QueueService, clock: FakeClock, job_id: JobId, w: WorkerId, a: Action
) -> None:
    if a is Action.CLAIM:
        claimed = await svc.jobs.claim(w)
        if claimed is None or claimed.id != job_id:
            raise InvalidTransition(job_id, "?", "claim")
    elif a is Action.COMPLETE:
        await svc.jobs.complete(job_id, w, 1, [])
    elif a is Action.FAIL:
        await svc.jobs.fail(job_id, w, 1, JobError(type="x", message="x"))
    elif a is Action.CANCEL:
        await svc.jobs.cancel(job_id, "x")
    elif a is Action.EXPIRE:
        clock.advance(svc.settings.lease_seconds + 1)
        await svc.jobs.reap(10_000)


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLED])
@pytest.mark.parametrize("action", list(Action))
async def test_scripts_follow_the_table(
    service: QueueService, clock: FakeClock, status: S, action: Action
) -> None:
    job_id, w = await _job_in(service, clock, status)
    expected = next_status(status, action, attempts=1, max_attempts=service.settings.max_attempts)
    with contextlib.suppress(InvalidTransition, LeaseLost):
        await _apply(service, clock, job_id, w, action)
    after = (await service.jobs.get(job_id)).status
    assert after == (expected or status)
