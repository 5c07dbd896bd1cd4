"""Blocking claims and the event stream, with the hub reading a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from queue_manager.core.errors import WorkerUnavailable
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.service.hub import Overflowed, Subscription
from queue_manager.service.queue import QueueService
from queue_manager.store.events import Event
from tests.conftest import add_worker, prompt, user


@pytest.fixture
async def live(service: QueueService) -> AsyncIterator[QueueService]:
    async with service.running():
        await wait_until(lambda: service.hub.running)
        yield service


async def wait_until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_blocked_claim_is_woken_by_a_submission(live: QueueService) -> None:
    w = await add_worker(live)
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    claimed = await asyncio.wait_for(waiter, 5)  # far below the 30 s wait: it was woken
    assert claimed is not None and claimed.id == job.id


async def test_blocked_claim_is_woken_by_resume(live: QueueService) -> None:
    w = await add_worker(live)
    await live.control.pause()
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await live.control.resume()
    claimed = await asyncio.wait_for(waiter, 5)
    assert claimed is not None and claimed.id == job.id


async def test_blocked_claim_is_woken_when_a_running_slot_frees(live: QueueService) -> None:
    await live.control.set_room_limits(max_running=1)
    w1, w2 = await add_worker(live, "gpu1"), await add_worker(live, "gpu2")
    a1 = await live.submit(user(1), Lane.NORMAL, prompt())
    a2 = await live.submit(user(1), Lane.NORMAL, prompt())
    assert (await live.claim(w1, wait=1)).id == a1.id  # type: ignore[union-attr]
    waiter = asyncio.create_task(live.claim(w2, wait=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await live.jobs.complete(a1.id, w1, 1, [])
    claimed = await asyncio.wait_for(waiter, 5)
    assert claimed is not None and claimed.id == a2.id


async def test_one_submission_wakes_many_claimers_but_only_one_gets_it(live: QueueService) -> None:
    workers = [await add_worker(live, f"gpu{i}") for i in range(4)]
    waiters = [asyncio.create_task(live.claim(w, wait=0.5)) for w in workers]
    await asyncio.sleep(0.05)
    await live.submit(user(1), Lane.NORMAL, prompt())
    results = await asyncio.gather(*waiters)
    assert sum(r is not None for r in results) == 1


async def test_claim_returns_none_when_its_wait_ends(live: QueueService) -> None:
    w = await add_worker(live)
    assert await live.claim(w, wait=0.05) is None


async def test_no_event_is_lost_between_subscribing_and_submitting(live: QueueService) -> None:
    with live.hub.subscribe(user(1)) as sub:
        job = await live.submit(user(1), Lane.NORMAL, prompt())
        event = await asyncio.wait_for(sub.get(), 5)
    assert (event.type, event.job) == ("job.queued", job.id)


async def test_user_subscription_sees_only_that_users_events(live: QueueService) -> None:
    with live.hub.subscribe(user(2)) as mine, live.hub.subscribe() as everything:
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
    live.hub._queue_size = 3
    with live.hub.subscribe() as slow, live.hub.subscribe(UserId("user001")) as other:
        for _ in range(5):
            await live.submit(user(1), Lane.NORMAL, prompt())
        await wait_until(lambda: slow.overflowed)
        assert other.overflowed  # same volume for user001: also behind
    with live.hub.subscribe() as fresh:  # the hub itself carries on for everyone else
        job = await live.submit(user(2), Lane.NORMAL, prompt())
        # (events written just before subscribing may still arrive first: extra, never lost)
        while (event := await asyncio.wait_for(fresh.get(), 5)).job != job.id:
            pass
    assert event.user == user(2)


async def test_a_submission_is_handed_only_to_an_idle_worker_that_can_run_it(
    live: QueueService,
) -> None:
    small = await add_worker(live, "small", Capabilities(frozenset({"SaveImage"})))
    big = await add_worker(live, "big", Capabilities(frozenset({"KSampler", "SaveImage"})))
    waiting_small = asyncio.create_task(live.claim(small, wait=0.5))
    waiting_big = asyncio.create_task(live.claim(big, wait=30))
    await asyncio.sleep(0.05)
    job = await live.submit(user(1), Lane.NORMAL, prompt("KSampler"))
    got = await asyncio.wait_for(waiting_big, 5)
    assert got is not None
    assert got.id == job.id
    assert await waiting_small is None


async def test_a_job_handed_over_to_a_claim_that_went_away_goes_back_to_the_queue(
    live: QueueService,
) -> None:
    w = await add_worker(live)
    assert await live.jobs.claim(w, wait=True) is None  # now idle
    job = await live.submit(user(1), Lane.NORMAL, prompt())  # handed to the inbox
    assert (await live.jobs.get(job.id)).status is JobStatus.RUNNING
    await live._abandon_claim(w, None)
    again = await live.jobs.get(job.id)
    assert again.status is JobStatus.QUEUED
    assert "not delivered" in again.timeline[-1].reason


async def test_a_handed_over_job_cancelled_before_pickup_is_not_run(live: QueueService) -> None:
    w = await add_worker(live)
    assert await live.jobs.claim(w, wait=True) is None
    job = await live.submit(user(1), Lane.NORMAL, prompt())
    await live.jobs.cancel(job.id, "changed my mind")
    assert await live.jobs.claim(w) is None


async def test_draining_a_waiting_worker_ends_its_claim(live: QueueService) -> None:
    w = await add_worker(live)
    waiter = asyncio.create_task(live.claim(w, wait=30))
    await asyncio.sleep(0.05)
    await live.set_worker_state(w, "draining")
    with pytest.raises(WorkerUnavailable):
        await asyncio.wait_for(waiter, 5)


def _event(n: int, kind: str, job: str = "j1") -> Event:
    return Event(f"{n}-0", kind, float(n), JobId(job), user(1), data={"value": n})


async def test_a_slow_consumer_gets_progress_coalesced_in_place() -> None:
    sub = Subscription(None, maxsize=10)
    sub.offer(_event(1, "job.started"))
    for n in range(2, 50):
        sub.offer(_event(n, "job.progress"))
    sub.offer(_event(50, "job.progress", job="j2"))
    sub.offer(_event(51, "job.completed"))
    got = [await sub.get() for _ in range(sub.pending())]
    assert [(e.type, e.job, e.data["value"]) for e in got] == [
        ("job.started", "j1", 1),
        ("job.progress", "j1", 49),  # the newest, in the place of the first
        ("job.progress", "j2", 50),
        ("job.completed", "j1", 51),
    ]
    assert not sub.overflowed


async def test_a_consumer_that_stays_behind_overflows_and_is_told_so() -> None:
    sub = Subscription(None, maxsize=3)
    for n in range(5):
        sub.offer(_event(n, "job.queued", job=f"j{n}"))
    assert sub.overflowed
    assert [(await sub.get()).job for _ in range(3)] == ["j0", "j1", "j2"]
    with pytest.raises(Overflowed):
        await sub.get()
