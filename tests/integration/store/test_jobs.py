"""The queue core against a real redis-server: policy, limits, controls, leases."""

from __future__ import annotations

import contextlib
import random

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.errors import (
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LimitExceeded,
    PromptRejected,
    WorkerNotFound,
    WorkerUnavailable,
)
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import JobError, JobStatus, Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.core.scheduling import Mode
from queue_manager.service.queue import QueueService
from tests.conftest import FakeClock, add_worker, make_settings, prompt, user


async def submit(svc: QueueService, u: UserId, lane: Lane = Lane.NORMAL, **kw: object) -> JobId:
    job = await svc.submit(u, lane, kw.pop("p", None) or prompt(), **kw)  # type: ignore[arg-type]
    return job.id


async def drain(svc: QueueService, worker: str = "gpu1") -> list[JobId]:
    """Claim and complete until nothing is claimable; the order jobs were handed out."""
    order = []
    while (job := await svc.jobs.claim(worker)) is not None:  # type: ignore[arg-type]
        order.append(job.id)
        await svc.jobs.complete(job.id, job.worker, job.attempts, [])  # type: ignore[arg-type]
    return order


async def test_newcomer_is_among_the_next_two_claimed(service: QueueService) -> None:
    w = await add_worker(service)
    a_jobs = [await submit(service, user(1)) for _ in range(10)]
    first = await service.jobs.claim(w)
    assert first is not None and first.id == a_jobs[0]
    b_job = await submit(service, user(2))
    nxt = [await service.jobs.claim(w) for _ in range(2)]
    assert b_job in [j.id for j in nxt if j]


async def test_round_robin_between_users_and_fifo_within_one(service: QueueService) -> None:
    await add_worker(service)
    a = [await submit(service, user(1)) for _ in range(3)]
    b = [await submit(service, user(2)) for _ in range(2)]
    assert await drain(service) == [a[0], b[0], a[1], b[1], a[2]]


async def test_instructor_lane_goes_first(service: QueueService) -> None:
    await add_worker(service)
    low = await submit(service, user(1), Lane.LOW)
    normal = await submit(service, user(2))
    high = await submit(service, user(3), Lane.HIGH)
    teacher = await submit(service, UserId("instructor"), Lane.INSTRUCTOR)
    assert await drain(service) == [teacher, high, normal, low]


async def test_fifo_mode_serves_oldest_first(service: QueueService) -> None:
    await service.control.set_mode(Mode.FIFO)
    await add_worker(service)
    jobs = [await submit(service, user(n)) for n in (1, 1, 1, 2, 2)]
    assert await drain(service) == jobs


async def test_queued_limit_refuses_with_a_clear_message(service: QueueService) -> None:
    await service.control.set_room_limits(max_queued=2)
    await submit(service, user(1))
    await submit(service, user(1))
    with pytest.raises(LimitExceeded, match="already have 2 jobs waiting"):
        await submit(service, user(1))
    await submit(service, user(2))  # other users are not affected
    await service.control.set_user(user(1), max_queued=3)  # live per-user override
    await submit(service, user(1))


async def test_rejected_submission_loses_nothing(service: QueueService) -> None:
    await service.control.set_room_limits(max_queued=1)
    kept = await submit(service, user(1))
    with pytest.raises(LimitExceeded):
        await submit(service, user(1))
    assert list(await service.jobs.user_job_ids(user(1))) == [kept]
    assert (await service.jobs.get(kept)).status is JobStatus.QUEUED


async def test_running_limit_skips_a_busy_user_until_their_job_ends(service: QueueService) -> None:
    await service.control.set_room_limits(max_running=1)
    w1 = await add_worker(service, "gpu1")
    w2 = await add_worker(service, "gpu2")
    a1, a2 = await submit(service, user(1)), await submit(service, user(1))
    first = await service.jobs.claim(w1)
    assert first is not None and first.id == a1
    assert await service.jobs.claim(w2) is None  # a2 waits: user001 already runs one
    await service.jobs.complete(a1, w1, 1, [])
    second = await service.jobs.claim(w2)
    assert second is not None and second.id == a2


async def test_pause_holds_every_claim_until_resume(service: QueueService) -> None:
    w = await add_worker(service)
    job = await submit(service, user(1))
    await service.control.pause()
    assert await service.jobs.claim(w) is None
    await service.control.resume()
    claimed = await service.jobs.claim(w)
    assert claimed is not None and claimed.id == job


async def test_paused_user_is_skipped_and_others_go_on(service: QueueService) -> None:
    await add_worker(service)
    a = await submit(service, user(1))
    b = await submit(service, user(2))
    await service.control.set_user(user(1), paused=True)
    assert await drain(service) == [b]
    assert a not in await service.positions()
    await service.control.set_user(user(1), paused=False)
    assert await drain(service) == [a]


async def test_move_to_front_jumps_lanes_and_users(service: QueueService) -> None:
    await add_worker(service)
    teacher = await submit(service, UserId("instructor"), Lane.INSTRUCTOR)
    a = [await submit(service, user(1)) for _ in range(3)]
    await service.jobs.move_to_front(a[2])
    assert (await service.positions())[a[2]] == 1
    assert await drain(service) == [a[2], teacher, a[0], a[1]]


async def test_priority_change_moves_a_job_between_lanes(service: QueueService) -> None:
    await add_worker(service)
    a = await submit(service, user(1))
    b = await submit(service, user(2), Lane.LOW)
    await service.jobs.set_lane(b, Lane.HIGH)
    assert (await service.jobs.get(b)).lane is Lane.HIGH
    assert await drain(service) == [b, a]


async def test_cancel_queued_job_leaves_the_queue(service: QueueService) -> None:
    await add_worker(service)
    a = await submit(service, user(1))
    b = await submit(service, user(1))
    assert await service.jobs.cancel(a, "by user001") is JobStatus.QUEUED
    job = await service.jobs.get(a)
    assert job.status is JobStatus.CANCELLED
    assert job.timeline[-1].reason == "by user001"
    assert await drain(service) == [b]
    with pytest.raises(InvalidTransition):
        await service.jobs.cancel(a, "again")


async def test_cancel_running_job_tells_its_worker_and_ignores_its_late_result(
    service: QueueService,
) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    job = await service.jobs.claim(w)
    assert job is not None
    assert await service.jobs.cancel(a, "by instructor") is JobStatus.RUNNING
    with pytest.raises(LeaseLost):
        await service.jobs.heartbeat(w, a, 1)
    with pytest.raises(LeaseLost):
        await service.jobs.complete(a, w, 1, [{"filename": "late.png"}])
    final = await service.jobs.get(a)
    assert final.status is JobStatus.CANCELLED and final.outputs == []
    assert (await service.workers.get(w)).job is None


async def test_unknown_job_is_not_found(service: QueueService) -> None:
    with pytest.raises(JobNotFound):
        await service.jobs.get(JobId("00000000-0000-4000-8000-000000000000"))
    with pytest.raises(JobNotFound):
        await service.jobs.cancel(JobId("00000000-0000-4000-8000-000000000000"), "x")


async def test_expired_lease_requeues_job_exactly_once(
    service: QueueService, clock: FakeClock
) -> None:
    w1 = await add_worker(service, "gpu1")
    a = await submit(service, user(1))
    assert await service.jobs.claim(w1) is not None
    clock.advance(service.settings.lease_seconds + 1)
    assert await service.jobs.reap(60) == ([a], [])
    assert await service.jobs.reap(60) == ([], [])  # a second reaper finds nothing
    job = await service.jobs.get(a)
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and job.worker is None
    assert [e.reason for e in job.timeline][-1].startswith("lease expired")
    w2 = await add_worker(service, "gpu2")
    again = await service.jobs.claim(w2)
    assert again is not None and again.id == a and again.attempts == 2
    with pytest.raises(LeaseLost):  # the lost worker comes back too late
        await service.jobs.complete(a, w1, 1, [])
    await service.jobs.complete(a, w2, 2, [{"filename": "x.png"}])
    assert (await service.jobs.get(a)).status is JobStatus.COMPLETED


async def test_requeued_job_keeps_its_place_at_the_head_of_its_users_queue(
    service: QueueService, clock: FakeClock
) -> None:
    w = await add_worker(service)
    a = [await submit(service, user(1)) for _ in range(2)]
    await service.jobs.claim(w)
    clock.advance(service.settings.lease_seconds + 1)
    await service.jobs.reap(600)
    await service.jobs.heartbeat(w)
    assert await drain(service) == a


async def test_heartbeat_keeps_a_lease_alive(service: QueueService, clock: FakeClock) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    await service.jobs.claim(w)
    for _ in range(5):
        clock.advance(service.settings.lease_seconds * 0.6)
        await service.jobs.heartbeat(w, a, 1)
        assert await service.jobs.reap(600) == ([], [])
    assert (await service.jobs.get(a)).status is JobStatus.RUNNING


async def test_poison_job_fails_after_the_attempt_limit(
    service: QueueService, clock: FakeClock
) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    for attempt in range(1, service.settings.max_attempts + 1):
        job = await service.jobs.claim(w)
        assert job is not None and job.attempts == attempt
        clock.advance(service.settings.lease_seconds + 1)
        _requeued, failed = await service.jobs.reap(600)
        await service.jobs.heartbeat(w)
    assert failed == [a]
    job = await service.jobs.get(a)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.type == "attempts_exhausted"
    assert await service.jobs.claim(w) is None


async def test_worker_failure_records_comfyui_error(service: QueueService) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    await service.jobs.claim(w)
    err = JobError(
        type="execution_error", message="CUDA out of memory", node_id="3", node_type="KSampler"
    )
    await service.jobs.fail(a, w, 1, err)
    job = await service.jobs.get(a)
    assert job.status is JobStatus.FAILED and job.error == err
    assert (await service.workers.get(w)).failed == 1


async def test_claim_never_hands_a_job_to_a_worker_without_its_node_types(
    service: QueueService,
) -> None:
    small = await add_worker(service, "small", Capabilities(frozenset({"SaveImage"})))
    needs_sampler = await submit(service, user(1), p=prompt("KSampler", "SaveImage"))
    plain = await submit(service, user(2), p=prompt("SaveImage"))
    job = await service.jobs.claim(small)
    assert job is not None and job.id == plain
    assert await service.jobs.claim(small) is None
    big = await add_worker(service, "big", Capabilities(frozenset({"KSampler", "SaveImage"})))
    job = await service.jobs.claim(big)
    assert job is not None and job.id == needs_sampler


async def test_models_are_routed_when_a_worker_reports_them(service: QueueService) -> None:
    caps = Capabilities(frozenset({"KSampler", "SaveImage"}), frozenset({"sd15.safetensors"}))
    w = await add_worker(service, "gpu", caps)
    sdxl = await submit(service, user(1), p=prompt("SaveImage", model="sdxl.safetensors"))
    sd15 = await submit(service, user(1), p=prompt("SaveImage", model="sd15.safetensors"))
    job = await service.jobs.claim(w)
    assert job is not None and job.id == sd15  # FIFO within a user yields to capability
    assert (await service.jobs.get(sdxl)).hold == (
        "held: no connected GPU has models sdxl.safetensors"
    )


async def test_job_no_worker_can_run_is_held_with_a_reason_until_one_can(
    service: QueueService,
) -> None:
    a = await submit(service, user(1), p=prompt("KSampler"))
    assert (await service.jobs.get(a)).hold == "waiting for a GPU worker to connect"
    await add_worker(service, "small", Capabilities(frozenset({"SaveImage"})))
    assert (await service.jobs.get(a)).hold == "held: no connected GPU has node types KSampler"
    await add_worker(service, "big", Capabilities(frozenset({"KSampler"})))
    assert (await service.jobs.get(a)).hold is None


async def test_draining_or_unknown_worker_claims_nothing(service: QueueService) -> None:
    w = await add_worker(service)
    await submit(service, user(1))
    await service.set_worker_state(w, "draining")
    with pytest.raises(WorkerUnavailable):
        await service.jobs.claim(w)
    with pytest.raises(WorkerNotFound):
        await service.jobs.claim("ghost")  # type: ignore[arg-type]


async def test_removing_a_worker_requeues_its_job(service: QueueService) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    await service.jobs.claim(w)
    await service.set_worker_state(w, "removed")
    assert (await service.jobs.get(a)).status is JobStatus.QUEUED
    with pytest.raises(WorkerNotFound):
        await service.workers.get(w)


async def test_reregistering_worker_gives_back_the_job_it_lost(service: QueueService) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    await service.jobs.claim(w)
    await add_worker(service)  # the agent restarted: it no longer runs anything
    job = await service.jobs.get(a)
    assert job.status is JobStatus.QUEUED and "restarted" in job.timeline[-1].reason


async def test_every_transition_is_on_the_timeline(service: QueueService) -> None:
    w = await add_worker(service)
    a = await submit(service, user(1))
    await service.jobs.claim(w)
    await service.jobs.complete(a, w, 1, [])
    tl = (await service.jobs.get(a)).timeline
    assert [(e.source, e.to) for e in tl] == [
        (None, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.COMPLETED),
    ]
    assert tl[1].worker == w and tl[1].attempt == 1
    assert tl[0].at <= tl[1].at <= tl[2].at


@pytest.mark.parametrize("seed", range(8))
async def test_positions_match_the_order_jobs_are_then_claimed(
    service: QueueService, seed: int
) -> None:
    rnd = random.Random(seed)
    await add_worker(service)
    if seed % 2:
        await service.control.set_mode(Mode.FIFO)
    lanes = [Lane.INSTRUCTOR, Lane.HIGH, Lane.NORMAL, Lane.NORMAL, Lane.LOW]
    jobs = []
    for _ in range(40):
        jobs.append(await submit(service, user(rnd.randint(1, 6)), rnd.choice(lanes)))
        if rnd.random() < 0.2:  # claim some along the way so served stamps differ
            await drain_one(service)
    for job_id in rnd.sample(jobs, 3):
        with contextlib.suppress(InvalidTransition):
            await service.jobs.move_to_front(job_id)
    predicted = sorted((pos, j) for j, pos in (await service.positions()).items())
    assert [j for _, j in predicted] == await drain(service)


async def drain_one(svc: QueueService) -> None:
    job = await svc.jobs.claim("gpu1")  # type: ignore[arg-type]
    if job is not None:
        await svc.jobs.complete(job.id, job.worker, job.attempts, [])  # type: ignore[arg-type]


async def test_counts_stay_consistent_with_statuses(service: QueueService) -> None:
    w = await add_worker(service)
    jobs = [await submit(service, user(n % 3)) for n in range(9)]
    await service.jobs.cancel(jobs[0], "x")
    await drain_one(service)
    await service.jobs.claim(w)
    stats = await service.redis.hgetall(service._keys.stats)
    assert stats == {"queued": "6", "running": "1", "completed": "1", "cancelled": "1"}
    queued = await service.redis.hgetall(service._keys.queued)
    assert sum(int(v) for v in queued.values()) == 6


async def test_room_and_user_controls_read_back_as_set(service: QueueService) -> None:
    await service.control.pause()
    await service.control.set_room_limits(max_queued=4, max_running=2)
    await service.control.set_user(user(1), paused=True, max_running=3)
    room = await service.control.room()
    assert (room.paused, room.max_queued, room.max_running, room.mode) == (True, 4, 2, Mode.FAIR)
    one = await service.control.user(user(1))
    assert (one.paused, one.max_queued, one.max_running) == (True, None, 3)
    await service.control.set_user(user(1), clear_limits=True)
    assert (await service.control.user(user(1))).max_running is None


async def test_oversized_and_malformed_prompts_are_refused_and_nothing_is_queued(
    redis_server: RedisServer, redis: Redis, prefix: str, clock: FakeClock
) -> None:
    svc = QueueService(make_settings(redis_server, prefix, max_prompt_bytes=2048), redis, clock)
    await svc.initialize()
    big = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "x" * 4096}}}
    with pytest.raises(PromptRejected, match="bytes; at most 2048"):
        await svc.submit(user(1), Lane.NORMAL, big)
    with pytest.raises(PromptRejected, match="missing the class_type"):
        await svc.submit(user(1), Lane.NORMAL, {"1": {"inputs": {}}})
    assert await svc.jobs.user_job_ids(user(1)) == []
    assert await svc.positions() == {}
