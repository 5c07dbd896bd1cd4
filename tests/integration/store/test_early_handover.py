"""Jobs handed to a busy worker early (they wait in its ComfyUI's queue) against a real
redis-server: what the worker shows, taking one back for a job the policy puts first, and giving
one back without changing anyone's turn or counting an attempt."""

from __future__ import annotations

import pytest

from queue_manager.core.errors import LeaseLost
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.core.queueing import Claimed, Signal, SignalAction
from queue_manager.store import JobStore, WorkerStore
from tests.integration.store.test_jobs import register, submit
from tests.support.jobs import user


async def claim(jobs: JobStore, worker: WorkerId) -> JobId:
    job = await jobs.claim(worker)
    assert job is not None
    return job.id


async def test_a_job_claimed_while_another_runs_is_the_workers_next(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    first, second, third = [await submit(jobs, user(n)) for n in (1, 2, 3)]
    assert await claim(jobs, w) == first
    assert await claim(jobs, w) == second
    shown = await workers.get(w)
    assert (shown.job, shown.next) == (first, second)
    await jobs.complete(first, w, 1)  # the GPU moved on to the next
    shown = await workers.get(w)
    assert (shown.job, shown.next) == (second, None)
    # Claimed while the last one's outputs are still copied: the GPU runs `second` now.
    assert await claim(jobs, w) == third
    shown = await workers.get(w)
    assert (shown.job, shown.next) == (second, third)


async def test_giving_back_an_early_job_keeps_every_turn_and_counts_no_attempt(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    a1, b1, c1, a2 = [await submit(jobs, user(n)) for n in (1, 2, 3, 1)]
    assert await claim(jobs, w) == a1
    assert await claim(jobs, w) == b1  # handed early
    assert await jobs.give_back(b1, w, 1, "taken back") is True
    back = await jobs.get(b1)
    assert back.status is JobStatus.QUEUED and back.attempts == 0 and back.worker is None
    assert (await workers.get(w)).next is None
    await jobs.complete(a1, w, 1)
    # user002 still goes next, as if the hand-over never happened; then 3, then 1 again.
    other = await register(workers, "gpu2")
    order = []
    while (job := await jobs.claim(other)) is not None:
        order.append((job.id, job.attempts))
        await jobs.complete(job.id, other, job.attempts)
    assert order == [(b1, 1), (c1, 1), (a2, 1)]


async def test_a_job_that_started_is_not_given_back(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    first, second = [await submit(jobs, user(n)) for n in (1, 2)]
    await claim(jobs, w)
    await claim(jobs, w)
    await jobs.report(second, w, 1, "job.started", {}, {"started_at": "1.0"})
    assert await jobs.give_back(second, w, 1, "taken back") is False
    assert (await jobs.get(second)).status is JobStatus.RUNNING
    with pytest.raises(LeaseLost):  # nor by a worker that does not hold it
        await jobs.give_back(first, WorkerId("gpu9"), 1, "taken back")


async def test_an_instructors_job_signals_the_worker_to_take_back_its_early_job(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    first, early = [await submit(jobs, user(n)) for n in (1, 2)]
    await claim(jobs, w)
    await claim(jobs, w)
    await submit(jobs, user(2))  # user002's next turn comes after user002's: nothing back
    assert await workers.wait_signals(w, 0.05) == []
    demo = await submit(jobs, user(0), Lane.INSTRUCTOR)
    assert await workers.wait_signals(w, 1) == [Signal(SignalAction.BACK, early)]
    await submit(jobs, user(0), Lane.INSTRUCTOR)  # one take-back per early job
    assert await workers.wait_signals(w, 0.05) == []
    assert await jobs.give_back(early, w, 1, "taken back") is True
    await jobs.complete(first, w, 1)
    assert await claim(jobs, w) == demo


async def test_cancelling_a_running_job_signals_its_worker_at_once(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    job = await submit(jobs, user(1))
    await claim(jobs, w)
    await jobs.cancel(job, "cancelled by the instructor")
    assert await workers.wait_signals(w, 1) == [Signal(SignalAction.STOP, job)]


async def test_a_participant_whose_turn_comes_first_takes_back_an_early_job(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    a1, b1 = [await submit(jobs, user(n)) for n in (1, 2)]
    assert await claim(jobs, w) == a1
    await jobs.complete(a1, w, 1)
    assert await claim(jobs, w) == b1
    a2 = await submit(jobs, user(1))
    early = await submit(jobs, user(1))
    assert await claim(jobs, w) == a2
    assert await claim(jobs, w) == early  # user001 again: nobody else waits
    assert await workers.wait_signals(w, 0.05) == []
    newcomer = await submit(jobs, user(3))  # never served: goes before user001's second turn
    assert await workers.wait_signals(w, 1) == [Signal(SignalAction.BACK, early)]
    assert await jobs.give_back(early, w, 1, "taken back") is True
    await jobs.complete(b1, w, 1)
    assert await claim(jobs, w) == newcomer


async def test_a_gpu_with_nothing_to_run_takes_over_a_job_waiting_behind_another(
    jobs: JobStore, workers: WorkerStore
) -> None:
    busy = await register(workers)
    _, early = [await submit(jobs, user(n)) for n in (1, 2)]
    await claim(jobs, busy)
    await claim(jobs, busy)  # waits behind the first on the busy GPU
    idle = await register(workers, "gpu2")
    assert await jobs.claim(idle, wait=True) is None  # nothing queued: it waits...
    assert await workers.wait_signals(busy, 1) == [Signal(SignalAction.BACK, early)]
    assert await jobs.give_back(early, busy, 1, "taken back") is True
    # Handed to the idle GPU in the same step: the busy one, claiming again at once (a slot
    # does, in the queue manager's own process), cannot take it straight back.
    assert await jobs.claim(busy) is None
    handed = await jobs.wait_inbox(idle, 1)  # ... the idle GPU is woken with it
    assert isinstance(handed, Claimed) and handed.id == early
    job = await jobs.get(early)
    assert (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, idle, 1)


@pytest.mark.parametrize("state", ["removed", "left"])
async def test_a_worker_gone_returns_its_early_job_uncounted_and_its_running_one_counted(
    jobs: JobStore, workers: WorkerStore, state: str
) -> None:
    w = await register(workers)
    running, early = [await submit(jobs, user(n)) for n in (1, 2)]
    await claim(jobs, w)
    await claim(jobs, w)
    await workers.set_state(w, state)
    back = [await jobs.get(running), await jobs.get(early)]
    assert [j.status for j in back] == [JobStatus.QUEUED] * 2
    assert [j.attempts for j in back] == [1, 0]
    assert "before it started" in back[1].timeline[-1].reason
    # user002's turn is as before the hand-over (never served): before user001, who was.
    other = await register(workers, "gpu2")
    assert [await claim(jobs, other), await claim(jobs, other)] == [early, running]


async def test_a_worker_gone_counts_an_early_job_that_had_started(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    _, second = [await submit(jobs, user(n)) for n in (1, 2)]
    await claim(jobs, w)
    await claim(jobs, w)
    await jobs.report(second, w, 1, "job.started", {}, {"started_at": "1.0"})
    await workers.set_state(w, "removed")
    assert (await jobs.get(second)).attempts == 1
