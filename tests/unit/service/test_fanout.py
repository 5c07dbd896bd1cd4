"""A hub subscription on its own: progress coalesced in place, a reader left behind told so,
a backlog taken at once and a direct consumer kept in order; the hub offering each event to
the subscriptions it is for."""

from __future__ import annotations

from typing import cast

import pytest

from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, UserId
from queue_manager.service.fanout import EventHub, Overflowed, Subscription
from queue_manager.store.events import Event, EventLog
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


async def test_a_consumer_takes_its_whole_backlog_at_once_with_every_state_change() -> None:
    sub = Subscription(None, maxsize=100)
    written = [
        _event(1, "job.queued"),
        _event(2, "job.claimed"),
        *(_event(n, "job.progress") for n in range(3, 30)),
        _event(30, "job.executing"),
        *(_event(n, "job.progress") for n in range(31, 60)),
        _event(60, "job.queued", job="j2"),
        _event(61, "job.completed"),
    ]
    for event in written:
        sub.offer(event)
    got = await sub.get_all()
    assert [(e.type, e.job, e.data["value"]) for e in got] == [
        ("job.queued", "j1", 1),
        ("job.claimed", "j1", 2),
        ("job.progress", "j1", 59),  # one progress, the newest, where the first one waited
        ("job.executing", "j1", 30),
        ("job.queued", "j2", 60),
        ("job.completed", "j1", 61),
    ]
    assert sub.pending() == 0


async def test_a_direct_consumer_takes_events_until_it_is_busy_then_they_queue_in_order() -> None:
    sub = Subscription(None, maxsize=100)
    taken: list[int] = []
    busy = False

    def direct(event: Event) -> bool:
        if busy:
            return False
        taken.append(int(str(event.data["value"])))
        return True

    sub.direct = direct
    sub.offer(_event(1, "job.queued"))
    sub.offer(_event(2, "job.progress"))
    busy = True
    sub.offer(_event(3, "job.claimed"))
    busy = False  # free again, but what queued goes first: these queue behind it
    sub.offer(_event(4, "job.progress"))
    sub.offer(_event(5, "job.completed"))
    assert taken == [1, 2]
    assert [e.data["value"] for e in await sub.get_all()] == [3, 4, 5]
    sub.offer(_event(6, "job.queued", job="j2"))  # nothing queued now: taken at once
    assert taken == [1, 2, 6]
    assert sub.pending() == 0


@pytest.mark.parametrize(
    ("event_user", "kind", "reached"),
    [
        ("user001", "job.progress", {"room", "user001"}),
        ("user002", "job.completed", {"room", "user002"}),
        (None, "worker.joined", {"room"}),
        (None, "workshop.open", {"room", "user001", "user002"}),
    ],
)
async def test_the_hub_offers_an_event_to_its_users_subscriptions_and_the_rooms(
    event_user: str | None, kind: str, reached: set[str]
) -> None:
    hub = EventHub(cast(EventLog, None))
    with (
        hub.subscribe(None) as room,
        hub.subscribe(UserId("user001")) as one,
        hub.subscribe(UserId("user002")) as two,
    ):
        event = Event("1-0", EventType(kind), 1.0, JobId("j1"), cast(UserId, event_user))
        hub._dispatch([event])
        subs = {"room": room, "user001": one, "user002": two}
        assert {name for name, sub in subs.items() if sub.pending()} == reached
    assert hub.subscribers == 0
