"""Blocking claims and the event stream, with the hub reading a real Redis."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from queue_manager.core.errors import WorkerUnavailable
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from queue_manager.store import ControlStore, JobStore, ScriptRunner
from queue_manager.store.keys import Keys
from tests.support.clock import FakeClock
from tests.support.jobs import add_worker, in_claim, prompt, user
from tests.support.waiting import until

INSTRUCTOR = UserId("instructor")


@dataclass(frozen=True)
class Stores:
    """The service's stores over the same Redis and clock, for what no use case does alone
    (a claim that leaves the worker idle, a room-wide limit)."""

    jobs: JobStore
    control: ControlStore


@pytest.fixture
def stores(redis: Redis, prefix: str, clock: FakeClock) -> Stores:
    runner = ScriptRunner(redis, Keys(prefix), clock)
    return Stores(JobStore(runner), ControlStore(runner))


async def waiting(redis: Redis, prefix: str, *workers: WorkerId) -> None:
    """Until each worker's blocking claim has looked, found nothing and waits."""
    await until(lambda: in_claim(redis, prefix, *workers), 5, f"{workers} waiting")


async def test_blocked_claim_is_woken_by_a_submission(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    w = await add_worker(live)
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await waiting(redis, prefix, w)
    assert not waiter.done()
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    claimed = await asyncio.wait_for(waiter, 5)  # far below the 30 s wait: it was woken
    assert claimed is not None and claimed.id == job.id


async def test_blocked_claim_is_woken_by_resume(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    w = await add_worker(live)
    await live.pause(INSTRUCTOR)
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await waiting(redis, prefix, w)
    assert not waiter.done()
    await live.resume(INSTRUCTOR)
    claimed = await asyncio.wait_for(waiter, 5)
    assert claimed is not None and claimed.id == job.id


async def test_blocked_claim_is_woken_when_a_running_slot_frees(
    live: QueueService, stores: Stores, redis: Redis, prefix: str
) -> None:
    await stores.control.set_room_limits(max_running=1)
    w1, w2 = await add_worker(live, "gpu1"), await add_worker(live, "gpu2")
    a1 = await live.submit(user(1), Lane.NORMAL, prompt())
    a2 = await live.submit(user(1), Lane.NORMAL, prompt())
    assert (await live.claim(w1, wait=1)).id == a1.id  # type: ignore[union-attr]
    waiter = asyncio.create_task(live.claim(w2, wait=30))
    await waiting(redis, prefix, w2)
    assert not waiter.done()
    await live.complete(a1.id, w1, 1)
    claimed = await asyncio.wait_for(waiter, 5)
    assert claimed is not None and claimed.id == a2.id


async def test_one_submission_among_many_waiting_claimers_goes_to_exactly_one(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    workers = [await add_worker(live, f"gpu{i}") for i in range(4)]
    waiters = {asyncio.create_task(live.claim(w, wait=30)): w for w in workers}
    await waiting(redis, prefix, *workers)
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    done, pending = await asyncio.wait(waiters, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    # The others were handed nothing: a hand-over takes a worker out of the idle set in the
    # same step as the submission, and they are all still in it.
    assert await in_claim(redis, prefix, *(waiters[t] for t in pending))
    for task in pending:
        task.cancel()
    await asyncio.wait(pending)
    results = [t.result() for t in done]
    assert sum(r is not None for r in results) == 1
    assert len(pending) == len(workers) - 1
    assert [r.id for r in results if r is not None] == [job.id]


async def test_claim_returns_none_when_its_wait_ends(live: QueueService) -> None:
    w = await add_worker(live)
    assert await live.claim(w, wait=0.05) is None


async def test_no_event_is_lost_between_subscribing_and_submitting(live: QueueService) -> None:
    with live.subscribe(user(1)) as sub:
        job = await live.submit(user(1), Lane.NORMAL, prompt())
        event = await asyncio.wait_for(sub.get(), 5)
    assert (event.type, event.job) == ("job.queued", job.id)


async def test_user_subscription_sees_only_that_users_events(live: QueueService) -> None:
    with live.subscribe(user(2)) as mine, live.subscribe(None) as everything:
        await live.submit(user(1), Lane.NORMAL, prompt())
        theirs = await live.submit(user(2), Lane.NORMAL, prompt())
        seen_all = [await asyncio.wait_for(everything.get(), 5) for _ in range(2)]
        seen_mine = await asyncio.wait_for(mine.get(), 5)
        assert mine.pending() == 0
    assert [e.user for e in seen_all] == [user(1), user(2)]
    assert seen_mine.job == theirs.id


async def test_a_subscriber_that_falls_behind_is_cut_off_not_waited_for(
    live: QueueService,
) -> None:
    live._hub._queue_size = 3
    with live.subscribe(None) as slow, live.subscribe(UserId("user001")) as other:
        for _ in range(5):
            await live.submit(user(1), Lane.NORMAL, prompt())
        await until(lambda: slow.overflowed, 5, "the slow subscriber overflowing")
        assert other.overflowed  # same volume for user001: also behind
    with live.subscribe(None) as fresh:  # the hub itself carries on for everyone else
        job = await live.submit(user(2), Lane.NORMAL, prompt())
        # (events written just before subscribing may still arrive first: extra, never lost)
        while (event := await asyncio.wait_for(fresh.get(), 5)).job != job.id:
            pass
    assert event.user == user(2)


async def test_a_submission_is_handed_only_to_an_idle_worker_that_can_run_it(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    small = await add_worker(live, "small", Capabilities(frozenset({"SaveImage"})))
    big = await add_worker(live, "big", Capabilities(frozenset({"KSampler", "SaveImage"})))
    waiting_small = asyncio.create_task(live.claim(small, wait=30))
    waiting_big = asyncio.create_task(live.claim(big, wait=30))
    await waiting(redis, prefix, small, big)
    job = await live.submit(user(1), Lane.NORMAL, prompt("KSampler"))
    got = await asyncio.wait_for(waiting_big, 5)
    assert got is not None
    assert got.id == job.id
    # The small worker was passed over: still waiting, nothing handed to it.
    assert await in_claim(redis, prefix, small)
    assert not waiting_small.done()
    waiting_small.cancel()
    await asyncio.wait({waiting_small})


async def test_a_job_handed_over_to_a_claim_that_went_away_goes_back_to_the_queue(
    live: QueueService, stores: Stores
) -> None:
    w = await add_worker(live)
    assert await stores.jobs.claim(w, wait=True) is None  # now idle
    job = await live.submit(user(1), Lane.NORMAL, prompt())  # handed to the inbox
    assert (await live.user_job(user(1), job.id)).status is JobStatus.RUNNING
    await live._abandon_claim(w, None)
    again = await live.user_job(user(1), job.id)
    assert again.status is JobStatus.QUEUED
    assert "not delivered" in again.timeline[-1].reason


async def test_a_handed_over_job_cancelled_before_pickup_is_not_run(
    live: QueueService, stores: Stores
) -> None:
    w = await add_worker(live)
    assert await stores.jobs.claim(w, wait=True) is None
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    await live.cancel(job.id, INSTRUCTOR)
    assert await stores.jobs.claim(w) is None


async def test_draining_a_waiting_worker_ends_its_claim(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    w = await add_worker(live)
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await waiting(redis, prefix, w)
    await live.drain_worker(w, INSTRUCTOR)
    with pytest.raises(WorkerUnavailable):
        await asyncio.wait_for(waiter, 5)


async def test_a_worker_that_leaves_gives_back_a_job_whose_claim_answer_it_lost(
    live: QueueService,
) -> None:
    """A claim answered just as the agent stopped: the answer never reached it, and the job
    would wait for its lease. The agent's leaving hands it straight back."""
    w = await add_worker(live)
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    assert (await live.claim(w, wait=1)).id == job.id  # type: ignore[union-attr]
    await live.leave(w)
    again = await live.user_job(user(1), job.id)
    assert again.status is JobStatus.QUEUED
    assert again.timeline[-1].reason == f"worker {w} left"
    assert w not in [info.id for info in await live.gpu_workers()]
    await live.leave(w)  # said twice (a retry): nothing more happens


async def test_a_stopping_worker_ends_its_waiting_claim_without_a_job(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    w = await add_worker(live)
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await waiting(redis, prefix, w)
    await live.stop_waiting(w)
    assert await asyncio.wait_for(waiter, 5) is None  # far below the 30 s wait
    assert not await in_claim(redis, prefix, w)  # not idle: no submission is handed to it
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    assert (await live.user_job(user(1), job.id)).status is JobStatus.QUEUED


async def test_a_stop_that_overtakes_its_claim_ends_that_claim_at_once(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    """The agent's stop reached the manager before its long poll did: the poll answers at once
    and takes no job, though one is queued."""
    w = await add_worker(live)
    await live.stop_waiting(w)
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    assert await asyncio.wait_for(live.claim(w, wait=30), 5) is None
    assert (await live.user_job(user(1), job.id)).status is JobStatus.QUEUED


async def test_a_stopping_worker_is_answered_with_the_job_already_given_to_it(
    live: QueueService, stores: Stores
) -> None:
    """A job was handed to the waiting worker just before its stop: the claim answers with it
    (the agent runs it before it leaves) rather than sending it back."""
    w = await add_worker(live)
    assert await stores.jobs.claim(w, wait=True) is None  # now idle
    job = await live.submit(user(1), Lane.NORMAL, prompt())  # handed to the inbox
    await live.stop_waiting(w)
    claimed = await asyncio.wait_for(live.claim(w, wait=30), 5)
    assert claimed is not None and claimed.id == job.id
    assert (await live.user_job(user(1), job.id)).status is JobStatus.RUNNING


async def test_a_stop_for_an_unknown_worker_leaves_nothing_behind(
    live: QueueService, redis: Redis, prefix: str
) -> None:
    await live.stop_waiting(WorkerId("nobody"))
    assert not await redis.exists(Keys(prefix).inbox(WorkerId("nobody")))
