"""The job store against a real redis-server: policy, limits, controls, leases."""

from __future__ import annotations

import contextlib
import random

import pytest
from redis.asyncio import Redis

from queue_manager.core.errors import (
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LimitExceeded,
    WorkerNotFound,
    WorkerUnavailable,
)
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import JobError, JobStatus, Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.core.scheduling import Mode, positions
from queue_manager.settings import Settings
from queue_manager.store import ControlStore, JobStore, WorkerStore
from queue_manager.store.jobs import LostOutput
from queue_manager.store.keys import Keys
from tests.support.clock import FakeClock
from tests.support.jobs import EVERYTHING, new_job, prompt, user


async def submit(
    jobs: JobStore, u: UserId, lane: Lane = Lane.NORMAL, p: dict[str, object] | None = None
) -> JobId:
    return (await jobs.submit(new_job(u, lane, p))).id


async def register(
    workers: WorkerStore, name: str = "gpu1", caps: Capabilities = EVERYTHING
) -> WorkerId:
    wid = WorkerId(name)
    await workers.register(wid, caps, {"gpu": "test"})
    return wid


async def drain(jobs: JobStore, worker: str = "gpu1") -> list[JobId]:
    """Claim and complete until nothing is claimable; the order jobs were handed out."""
    order = []
    while (job := await jobs.claim(WorkerId(worker))) is not None:
        order.append(job.id)
        await jobs.complete(job.id, job.worker, job.attempts)
    return order


async def drain_one(jobs: JobStore) -> None:
    job = await jobs.claim(WorkerId("gpu1"))
    if job is not None:
        await jobs.complete(job.id, job.worker, job.attempts)


async def test_newcomer_is_among_the_next_two_claimed(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    a_jobs = [await submit(jobs, user(1)) for _ in range(10)]
    first = await jobs.claim(w)
    assert first is not None and first.id == a_jobs[0]
    b_job = await submit(jobs, user(2))
    nxt = [await jobs.claim(w) for _ in range(2)]
    assert b_job in [j.id for j in nxt if j]


async def test_round_robin_between_users_and_fifo_within_one(
    jobs: JobStore, workers: WorkerStore
) -> None:
    await register(workers)
    a = [await submit(jobs, user(1)) for _ in range(3)]
    b = [await submit(jobs, user(2)) for _ in range(2)]
    assert await drain(jobs) == [a[0], b[0], a[1], b[1], a[2]]


async def test_instructor_lane_goes_first(jobs: JobStore, workers: WorkerStore) -> None:
    await register(workers)
    low = await submit(jobs, user(1), Lane.LOW)
    normal = await submit(jobs, user(2))
    high = await submit(jobs, user(3), Lane.HIGH)
    teacher = await submit(jobs, UserId("instructor"), Lane.INSTRUCTOR)
    assert await drain(jobs) == [teacher, high, normal, low]


async def test_fifo_mode_serves_oldest_first(
    jobs: JobStore, workers: WorkerStore, control: ControlStore
) -> None:
    await control.set_mode(Mode.FIFO)
    await register(workers)
    queued = [await submit(jobs, user(n)) for n in (1, 1, 1, 2, 2)]
    assert await drain(jobs) == queued


async def test_queued_limit_refuses_with_a_clear_message(
    jobs: JobStore, control: ControlStore
) -> None:
    await control.set_room_limits(max_queued=2)
    await submit(jobs, user(1))
    await submit(jobs, user(1))
    with pytest.raises(LimitExceeded, match="already have 2 jobs waiting"):
        await submit(jobs, user(1))
    await submit(jobs, user(2))  # other users are not affected
    await control.set_user_limits(user(1), 3, None)  # live per-user override
    await submit(jobs, user(1))


async def test_rejected_submission_loses_nothing(jobs: JobStore, control: ControlStore) -> None:
    await control.set_room_limits(max_queued=1)
    kept = await submit(jobs, user(1))
    with pytest.raises(LimitExceeded):
        await submit(jobs, user(1))
    assert list(await jobs.user_job_ids(user(1))) == [kept]
    assert (await jobs.get(kept)).status is JobStatus.QUEUED


async def test_running_limit_skips_a_busy_user_until_their_job_ends(
    jobs: JobStore, workers: WorkerStore, control: ControlStore
) -> None:
    await control.set_room_limits(max_running=1)
    w1 = await register(workers, "gpu1")
    w2 = await register(workers, "gpu2")
    a1, a2 = await submit(jobs, user(1)), await submit(jobs, user(1))
    first = await jobs.claim(w1)
    assert first is not None and first.id == a1
    assert await jobs.claim(w2) is None  # a2 waits: user001 already runs one
    await jobs.complete(a1, w1, 1)
    second = await jobs.claim(w2)
    assert second is not None and second.id == a2


async def test_pause_holds_every_claim_until_resume(
    jobs: JobStore, workers: WorkerStore, control: ControlStore
) -> None:
    w = await register(workers)
    job = await submit(jobs, user(1))
    await control.pause()
    assert await jobs.claim(w) is None
    await control.resume()
    claimed = await jobs.claim(w)
    assert claimed is not None and claimed.id == job


async def test_paused_user_is_skipped_and_others_go_on(
    jobs: JobStore, workers: WorkerStore, control: ControlStore
) -> None:
    await register(workers)
    a = await submit(jobs, user(1))
    b = await submit(jobs, user(2))
    await control.set_user_paused(user(1), True)
    assert await drain(jobs) == [b]
    assert a not in positions(await jobs.snapshot())
    await control.set_user_paused(user(1), False)
    assert await drain(jobs) == [a]


async def test_move_to_front_jumps_lanes_and_users(jobs: JobStore, workers: WorkerStore) -> None:
    await register(workers)
    teacher = await submit(jobs, UserId("instructor"), Lane.INSTRUCTOR)
    a = [await submit(jobs, user(1)) for _ in range(3)]
    await jobs.move_to_front(a[2])
    assert (positions(await jobs.snapshot()))[a[2]] == 1
    assert await drain(jobs) == [a[2], teacher, a[0], a[1]]


async def test_priority_change_moves_a_job_between_lanes(
    jobs: JobStore, workers: WorkerStore
) -> None:
    await register(workers)
    a = await submit(jobs, user(1))
    b = await submit(jobs, user(2), Lane.LOW)
    await jobs.set_lane(b, Lane.HIGH)
    assert (await jobs.get(b)).lane is Lane.HIGH
    assert await drain(jobs) == [b, a]


async def test_cancel_queued_job_leaves_the_queue(jobs: JobStore, workers: WorkerStore) -> None:
    await register(workers)
    a = await submit(jobs, user(1))
    b = await submit(jobs, user(1))
    assert await jobs.cancel(a, "by user001") is JobStatus.QUEUED
    job = await jobs.get(a)
    assert job.status is JobStatus.CANCELLED
    assert job.timeline[-1].reason == "by user001"
    assert await drain(jobs) == [b]
    with pytest.raises(InvalidTransition):
        await jobs.cancel(a, "again")


async def test_cancel_running_job_tells_its_worker_and_ignores_its_late_result(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    job = await jobs.claim(w)
    assert job is not None
    assert await jobs.cancel(a, "by instructor") is JobStatus.RUNNING
    with pytest.raises(LeaseLost):
        await jobs.heartbeat(w, a, 1)
    late = {"filename": "late.png", "subfolder": "", "type": "output", "size": 1}
    with pytest.raises(LeaseLost):
        await jobs.record_output(a, w, 1, "output//late.png", late)
    with pytest.raises(LeaseLost):
        await jobs.complete(a, w, 1)
    final = await jobs.get(a)
    assert final.status is JobStatus.CANCELLED and final.outputs == []
    assert (await workers.get(w)).job is None


async def test_a_finish_said_again_by_the_attempt_that_finished_is_answered_and_changes_nothing(
    jobs: JobStore, workers: WorkerStore
) -> None:
    """The worker's first answer was lost (the queue manager restarted): it says it again."""
    w = await register(workers)
    a = await submit(jobs, user(1))
    assert await jobs.claim(w) is not None
    await jobs.complete(a, w, 1)
    once = await jobs.get(a)
    await jobs.complete(a, w, 1)  # answered, not LeaseLost: the agent stops asking
    assert await jobs.get(a) == once  # no second end, no note in the timeline
    with pytest.raises(LeaseLost):  # another outcome, or another attempt, is still late
        await jobs.fail(a, w, 1, JobError(type="boom", message="late"))
    assert (await jobs.get(a)).status is JobStatus.COMPLETED


async def test_unknown_job_is_not_found(jobs: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await jobs.get(JobId("00000000-0000-4000-8000-000000000000"))
    with pytest.raises(JobNotFound):
        await jobs.cancel(JobId("00000000-0000-4000-8000-000000000000"), "x")


async def test_expired_lease_requeues_job_exactly_once(
    jobs: JobStore, workers: WorkerStore, settings: Settings, clock: FakeClock
) -> None:
    w1 = await register(workers, "gpu1")
    a = await submit(jobs, user(1))
    assert await jobs.claim(w1) is not None
    clock.advance(settings.lease_seconds + 1)
    assert await jobs.reap(60) == ([a], [])
    assert await jobs.reap(60) == ([], [])  # a second reaper finds nothing
    job = await jobs.get(a)
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and job.worker is None
    assert [e.reason for e in job.timeline][-1].startswith("lease expired")
    w2 = await register(workers, "gpu2")
    again = await jobs.claim(w2)
    assert again is not None and again.id == a and again.attempts == 2
    with pytest.raises(LeaseLost):  # the lost worker comes back too late
        await jobs.complete(a, w1, 1)
    late = (await jobs.get(a)).timeline[-1]  # said in the timeline, and nothing else changed
    assert (
        late.reason == "late completed result of attempt 1 from gpu1 discarded (the job is running)"
    )
    assert (late.to, late.worker, late.attempt) == (JobStatus.RUNNING, "gpu1", 1)
    assert (await jobs.get(a)).worker == w2
    x = {"filename": "x.png", "subfolder": "", "type": "output", "size": 1}
    await jobs.record_output(a, w2, 2, "output//x.png", x)
    await jobs.complete(a, w2, 2)
    done = await jobs.get(a)
    assert done.status is JobStatus.COMPLETED and done.outputs == [x]


async def test_an_attempt_that_loses_its_job_hands_its_files_over_for_deletion(
    jobs: JobStore, workers: WorkerStore, settings: Settings, clock: FakeClock
) -> None:
    w1 = await register(workers, "gpu1")
    a = await submit(jobs, user(1))
    assert (await jobs.claim(w1)) is not None
    first = {"filename": "p_00001_.png", "subfolder": "f", "type": "output", "size": 1}
    preview = {"filename": "t.png", "subfolder": "", "type": "temp", "size": 1}
    await jobs.record_output(a, w1, 1, "output/f/p_00001_.png", first)
    await jobs.record_output(a, w1, 1, "temp//t.png", preview)
    clock.advance(settings.lease_seconds + 1)
    assert await jobs.reap(60) == ([a], [])
    assert set(await jobs.take_lost_outputs(100)) == {
        LostOutput(user(1), "output", "f", "p_00001_.png"),
        LostOutput(user(1), "temp", "", "t.png"),
    }
    assert await jobs.take_lost_outputs(100) == []  # taken once
    w2 = await register(workers, "gpu2")
    assert (await jobs.claim(w2)) is not None
    again = {"filename": "p_00001__1.png", "subfolder": "f", "type": "output", "size": 1}
    await jobs.record_output(a, w2, 2, "output/f/p_00001_.png", again)
    await jobs.complete(a, w2, 2)
    assert (await jobs.get(a)).outputs == [again]
    assert await jobs.take_lost_outputs(100) == []  # a finishing attempt keeps its files
    # a restart (register) loses the attempt the same way
    b = await submit(jobs, user(2))
    assert (await jobs.claim(w1)) is not None
    await jobs.record_output(b, w1, 1, "output//b.png", {**first, "filename": "b.png"})
    await register(workers, "gpu1")
    assert await jobs.take_lost_outputs(100) == [LostOutput(user(2), "output", "f", "b.png")]


async def test_requeued_job_keeps_its_place_at_the_head_of_its_users_queue(
    jobs: JobStore, workers: WorkerStore, settings: Settings, clock: FakeClock
) -> None:
    w = await register(workers)
    a = [await submit(jobs, user(1)) for _ in range(2)]
    await jobs.claim(w)
    clock.advance(settings.lease_seconds + 1)
    await jobs.reap(600)
    await jobs.heartbeat(w)
    assert await drain(jobs) == a


async def test_heartbeat_keeps_a_lease_alive(
    jobs: JobStore, workers: WorkerStore, settings: Settings, clock: FakeClock
) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    await jobs.claim(w)
    for _ in range(5):
        clock.advance(settings.lease_seconds * 0.6)
        await jobs.heartbeat(w, a, 1)
        assert await jobs.reap(600) == ([], [])
    assert (await jobs.get(a)).status is JobStatus.RUNNING


async def test_poison_job_fails_after_the_attempt_limit(
    jobs: JobStore, workers: WorkerStore, settings: Settings, clock: FakeClock
) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    stored = {"filename": "p.png", "subfolder": "", "type": "output", "size": 1}
    for attempt in range(1, settings.max_attempts + 1):
        job = await jobs.claim(w)
        assert job is not None and job.attempts == attempt
        await jobs.record_output(a, w, attempt, "output//p.png", stored)
        clock.advance(settings.lease_seconds + 1)
        _requeued, failed = await jobs.reap(600)
        await jobs.heartbeat(w)
    assert failed == [a]
    job = await jobs.get(a)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.type == "attempts_exhausted"
    assert await jobs.claim(w) is None
    # the attempts that went back hand their files over; the last one keeps its own
    lost = await jobs.take_lost_outputs(100)
    assert len(lost) == settings.max_attempts - 1


async def test_worker_failure_records_comfyui_error(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    await jobs.claim(w)
    err = JobError(
        type="execution_error", message="CUDA out of memory", node_id="3", node_type="KSampler"
    )
    await jobs.fail(a, w, 1, err)
    job = await jobs.get(a)
    assert job.status is JobStatus.FAILED and job.error == err
    assert (await workers.get(w)).failed == 1


async def test_claim_never_hands_a_job_to_a_worker_without_its_node_types(
    jobs: JobStore, workers: WorkerStore
) -> None:
    small = await register(workers, "small", Capabilities(frozenset({"SaveImage"})))
    needs_sampler = await submit(jobs, user(1), p=prompt("KSampler", "SaveImage"))
    plain = await submit(jobs, user(2), p=prompt("SaveImage"))
    job = await jobs.claim(small)
    assert job is not None and job.id == plain
    assert await jobs.claim(small) is None
    big = await register(workers, "big", Capabilities(frozenset({"KSampler", "SaveImage"})))
    job = await jobs.claim(big)
    assert job is not None and job.id == needs_sampler


async def test_draining_or_unknown_worker_claims_nothing(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    await submit(jobs, user(1))
    await workers.set_state(w, "draining")
    with pytest.raises(WorkerUnavailable):
        await jobs.claim(w)
    with pytest.raises(WorkerNotFound):
        await jobs.claim(WorkerId("ghost"))


async def test_removing_a_worker_requeues_its_job(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    await jobs.claim(w)
    await workers.set_state(w, "removed")
    assert (await jobs.get(a)).status is JobStatus.QUEUED
    with pytest.raises(WorkerNotFound):
        await workers.get(w)


async def test_reregistering_worker_gives_back_the_job_it_lost(
    jobs: JobStore, workers: WorkerStore
) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    await jobs.claim(w)
    await register(workers)  # the agent restarted: it no longer runs anything
    job = await jobs.get(a)
    assert job.status is JobStatus.QUEUED and "restarted" in job.timeline[-1].reason


async def test_every_transition_is_on_the_timeline(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    a = await submit(jobs, user(1))
    await jobs.claim(w)
    await jobs.complete(a, w, 1)
    tl = (await jobs.get(a)).timeline
    assert [(e.source, e.to) for e in tl] == [
        (None, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.COMPLETED),
    ]
    assert tl[1].worker == w and tl[1].attempt == 1
    assert tl[0].at <= tl[1].at <= tl[2].at


@pytest.mark.parametrize("seed", range(8))
async def test_positions_match_the_order_jobs_are_then_claimed(
    jobs: JobStore, workers: WorkerStore, control: ControlStore, seed: int
) -> None:
    rnd = random.Random(seed)
    await register(workers)
    if seed % 2:
        await control.set_mode(Mode.FIFO)
    lanes = [Lane.INSTRUCTOR, Lane.HIGH, Lane.NORMAL, Lane.NORMAL, Lane.LOW]
    submitted = []
    for _ in range(40):
        submitted.append(await submit(jobs, user(rnd.randint(1, 6)), rnd.choice(lanes)))
        if rnd.random() < 0.2:  # claim some along the way so served stamps differ
            await drain_one(jobs)
    for job_id in rnd.sample(submitted, 3):
        with contextlib.suppress(InvalidTransition):
            await jobs.move_to_front(job_id)
    predicted = sorted((pos, j) for j, pos in positions(await jobs.snapshot()).items())
    assert [j for _, j in predicted] == await drain(jobs)


async def test_counts_stay_consistent_with_statuses(
    jobs: JobStore, workers: WorkerStore, redis: Redis, keys: Keys
) -> None:
    w = await register(workers)
    submitted = [await submit(jobs, user(n % 3)) for n in range(9)]
    await jobs.cancel(submitted[0], "x")
    await drain_one(jobs)
    await jobs.claim(w)
    stats = await redis.hgetall(keys.stats)
    assert stats == {"queued": "6", "running": "1", "completed": "1", "cancelled": "1"}
    queued = await redis.hgetall(keys.queued)
    assert sum(int(v) for v in queued.values()) == 6


async def test_room_and_user_controls_read_back_as_set(control: ControlStore) -> None:
    await control.pause()
    await control.set_room_limits(max_queued=4, max_running=2)
    await control.set_user_paused(user(1), True)
    await control.set_user_limits(user(1), None, 3)
    room = await control.room()
    assert (room.paused, room.max_queued, room.max_running, room.mode) == (True, 4, 2, Mode.FAIR)
    one = await control.user(user(1))
    assert (one.paused, one.max_queued, one.max_running) == (True, None, 3)
    await control.set_user_limits(user(1), None, None)
    assert (await control.user(user(1))).max_running is None
