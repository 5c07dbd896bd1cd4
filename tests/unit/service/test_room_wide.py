"""Room-wide pushes reach every subscription; a user's own events still reach only theirs."""

from __future__ import annotations

import pytest

from queue_manager.core.events import ROOM_WIDE, Event, EventType
from queue_manager.core.ids import JobId
from queue_manager.service.fanout import Subscription
from tests.support.jobs import user


def _job_event(n: int, owner: int) -> Event:
    return Event(f"{n}-0", EventType.JOB_QUEUED, float(n), JobId(f"j{n}"), user(owner))


def _room_wide(n: int, kind: EventType) -> Event:
    return Event(f"{n}-0", kind, float(n), data={"n": n})


@pytest.mark.parametrize("kind", sorted(ROOM_WIDE))
async def test_a_room_wide_push_reaches_every_users_subscription_and_the_dashboards(
    kind: EventType,
) -> None:
    subs = [Subscription(user(1), 10), Subscription(user(2), 10), Subscription(None, 10)]
    for sub in subs:
        sub.offer(_room_wide(1, kind))
    for sub in subs:
        got = await sub.get()
        assert (got.type, got.data) == (kind, {"n": 1})


async def test_a_users_own_events_still_reach_only_that_user() -> None:
    alice, bob = Subscription(user(1), 10), Subscription(user(2), 10)
    for event in (
        _job_event(1, owner=2),
        _room_wide(2, EventType.OUTPUT_SHOWN),
        _job_event(3, owner=1),
    ):
        alice.offer(event)
        bob.offer(event)
    assert [(await alice.get()).id for _ in range(alice.pending())] == ["2-0", "3-0"]
    assert [(await bob.get()).id for _ in range(bob.pending())] == ["1-0", "2-0"]


def test_the_room_wide_types_are_the_workshops_pushes() -> None:
    assert {kind.value for kind in ROOM_WIDE} == {
        "workshop.open",
        "workshop.workflows",
        "workshop.showcase",
    }
