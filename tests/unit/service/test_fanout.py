"""A hub subscription on its own: progress coalesced in place, a reader left behind told so."""

from __future__ import annotations

import pytest

from queue_manager.core.ids import JobId
from queue_manager.service.fanout import Overflowed, Subscription
from queue_manager.store.events import Event
from tests.support.jobs import user


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
