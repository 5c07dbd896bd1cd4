"""Estimates on the real queue: run times recorded as jobs complete, and read back into the
participant's status and the dashboard's rows (private Redis, a clock the test moves)."""

from __future__ import annotations

from redis.asyncio import Redis

from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.prompts import parse_prompt
from queue_manager.core.requirements import Capabilities
from queue_manager.core.runtimes import DEFAULT_RUN_SECONDS, shape_of
from queue_manager.service.queue import QueueService
from tests.support.clock import FakeClock
from tests.support.graphs import sampler
from tests.support.jobs import add_worker, user

SAMPLER_NODES = Capabilities(frozenset(n["class_type"] for n in sampler(1).values()))


async def gpu(svc: QueueService, name: str = "gpu1") -> WorkerId:
    return await add_worker(svc, name, SAMPLER_NODES)


async def run_job(svc: QueueService, clock: FakeClock, w: WorkerId, seconds: float) -> JobId:
    """Claim the next job on `w` and complete it `seconds` later (ComfyUI starts at once)."""
    job = await svc.claim(w, wait=0)
    assert job is not None
    await svc.report(job.id, w, job.attempts, EventType.JOB_STARTED, {})
    clock.advance(seconds)
    await svc.complete(job.id, w, job.attempts)
    return job.id


async def test_a_completed_job_teaches_the_estimate_its_shapes_run_time(
    service: QueueService, clock: FakeClock
) -> None:
    w = await gpu(service)
    await service.submit(user(1), Lane.NORMAL, sampler(20))
    await run_job(service, clock, w, 12.0)
    # Two queued jobs of the same shape now: one GPU, so 0 s and 12 s.
    first = await service.submit(user(2), Lane.NORMAL, sampler(20))
    second = await service.submit(user(3), Lane.NORMAL, sampler(20))
    view = await service.room_view(clock())
    assert view.estimates[first.id].start == 0.0
    assert view.estimates[first.id].finish == 12.0
    assert view.estimates[second.id].start == 12.0


async def test_a_new_step_count_is_estimated_from_its_family(
    service: QueueService, clock: FakeClock
) -> None:
    w = await gpu(service)
    for steps, seconds in ((10, 6.0), (30, 14.0)):
        await service.submit(user(1), Lane.NORMAL, sampler(steps))
        await run_job(service, clock, w, seconds)
    job = await service.submit(user(2), Lane.NORMAL, sampler(20))
    view = await service.room_view(clock())
    assert view.estimates[job.id].finish == 10.0


async def test_run_times_are_kept_bounded(
    service: QueueService, clock: FakeClock, redis: Redis, prefix: str
) -> None:
    w = await gpu(service)
    for _ in range(25):
        await service.submit(user(1), Lane.NORMAL, sampler(4))
        await run_job(service, clock, w, 1.0)
    family = shape_of(parse_prompt(sampler(4), max_nodes=100)).family
    assert await redis.llen(f"{prefix}rt:gpu:{w}:{family}") == 20
    assert await redis.llen(f"{prefix}rt:gpu:{w}") == 25
    assert await redis.ttl(f"{prefix}rt:family:{family}") > 0


async def test_the_participant_sees_times_and_why_others_go_first(
    service: QueueService, clock: FakeClock
) -> None:
    w = await gpu(service)
    await service.submit(user(1), Lane.NORMAL, sampler(20))
    await run_job(service, clock, w, 10.0)  # user001 has had a turn
    mine = await service.submit(user(1), Lane.NORMAL, sampler(20))
    for n in (2, 3, 4):  # three newcomers arrive after
        await service.submit(user(n), Lane.NORMAL, sampler(20))
    status = await service.workshop_status(user(1), clock())
    [entry] = [j for j in status["jobs"] if j["prompt_id"] == mine.id]
    assert entry["position"] == 4
    assert entry["reason"] == "3 people who have not had a turn yet go first"
    assert entry["eta_start"] == 30.0 and entry["eta_finish"] == 40.0
    assert entry["wait"] is None
    assert status["paused"] is False and status["user_paused"] is False


async def test_a_paused_participant_is_told_so_and_given_no_time(
    service: QueueService, clock: FakeClock
) -> None:
    await gpu(service)
    await service.pause_user(user(1), True, UserId("teacher"))
    job = await service.submit(user(1), Lane.NORMAL, sampler(4))
    status = await service.workshop_status(user(1), clock())
    [entry] = status["jobs"]
    assert entry["prompt_id"] == job.id
    assert entry["wait"] == "user_paused" and entry["eta_start"] is None
    assert status["user_paused"] is True


async def test_a_paused_queue_keeps_positions_and_times_on_the_dashboard(
    service: QueueService, clock: FakeClock
) -> None:
    await gpu(service)
    await service.pause(UserId("teacher"))
    a = await service.submit(user(1), Lane.NORMAL, sampler(4))
    b = await service.submit(user(2), Lane.NORMAL, sampler(4))
    await service.move_to_front(b.id, UserId("teacher"))
    state = await service.room_state(clock())
    assert state["paused"] is True
    rows = {r["id"]: r for r in state["queue"]}
    assert (rows[b.id]["position"], rows[a.id]["position"]) == (1, 2)
    assert rows[b.id]["eta_start"] == 0.0
    assert rows[a.id]["eta_start"] == DEFAULT_RUN_SECONDS
    # The participant's own page gives no time while nothing starts.
    [entry] = (await service.workshop_status(user(1), clock()))["jobs"]
    assert entry["wait"] == "paused" and entry["eta_start"] is None and entry["position"] == 2


async def test_the_dashboard_shows_a_running_jobs_time_left(
    service: QueueService, clock: FakeClock
) -> None:
    w = await gpu(service)
    await service.submit(user(1), Lane.NORMAL, sampler(4))
    await run_job(service, clock, w, 8.0)
    await service.submit(user(1), Lane.NORMAL, sampler(4))
    job = await service.claim(w, wait=0)
    assert job is not None
    clock.advance(3.0)
    [running] = (await service.room_state(clock()))["running"]
    assert running["id"] == job.id and running["eta_finish"] == 5.0


async def test_how_soon_participants_run_again_is_measured(
    service: QueueService, clock: FakeClock, redis: Redis, prefix: str
) -> None:
    w = await gpu(service)
    for think in (20.0, 40.0, 30.0):
        await service.submit(user(1), Lane.NORMAL, sampler(4))
        await run_job(service, clock, w, 5.0)
        clock.advance(think)
    # a second Run while one is queued is no look-and-tweak: not measured
    await service.submit(user(1), Lane.NORMAL, sampler(4))
    await service.submit(user(1), Lane.NORMAL, sampler(4))
    assert await redis.lrange(f"{prefix}rt:think", 0, -1) == ["30.000", "40.000", "20.000"]
    view = await service.room_view(clock())
    assert view.estimates  # read with the habit: 30 s, the median
    habit = await service._runtimes.returns(clock())
    assert habit.think == 30.0 and habit.ended_ago == {user(1): 30.0}
