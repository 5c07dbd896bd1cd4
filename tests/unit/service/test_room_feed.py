"""The dashboards' room feed: one state per change for every dashboard, and progress (which
refreshes a running row by its own frame) rebuilding the state at most once per interval."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from queue_manager.core.events import Event, EventType
from queue_manager.core.ids import JobId
from queue_manager.service.queue import QueueService
from queue_manager.service.room_feed import RoomFeed


class _Room:
    """Stands in for the service: counts the room states read."""

    def __init__(self) -> None:
        self.reads = 0

    async def room_state(self, now: float) -> dict[str, Any]:
        self.reads += 1
        return {"read": self.reads}


def _feed(room: _Room, progress_interval: float) -> RoomFeed:
    service = cast(QueueService, room)
    return RoomFeed(service, json.dumps, interval=0.001, progress_interval=progress_interval)


def _event(n: int, kind: EventType) -> Event:
    return Event(f"{n}-0", kind, float(n), JobId("j1"))


async def _next_state(feed: RoomFeed, seen: int) -> tuple[int, dict[str, Any]]:
    version, text = await asyncio.wait_for(feed.newer_than(seen), 5)
    state: dict[str, Any] = json.loads(text)["data"]
    return version, state


async def test_progress_soon_after_a_state_waits_but_a_state_change_never_does() -> None:
    room = _Room()
    feed = _feed(room, progress_interval=3600)
    feed.changed()
    seen, _ = await _next_state(feed, 0)
    await asyncio.sleep(0.02)  # the builder is idle again
    feed.event_frame(_event(1, EventType.JOB_PROGRESS))
    await asyncio.sleep(0.02)  # a rebuild, had progress asked for one, would be done by now
    feed.event_frame(_event(2, EventType.JOB_COMPLETED))
    seen, state = await _next_state(feed, seen)
    assert state == {"read": 2}  # the first state and the completion's: none for progress
    await feed.close()


async def test_progress_rebuilds_the_state_once_the_interval_has_passed() -> None:
    room = _Room()
    feed = _feed(room, progress_interval=0)
    feed.changed()
    seen, _ = await _next_state(feed, 0)
    feed.event_frame(_event(1, EventType.JOB_PROGRESS))
    _, state = await _next_state(feed, seen)
    assert state == {"read": 2}
    await feed.close()


async def test_an_events_frame_is_encoded_once_and_asks_for_one_state_for_every_dashboard() -> None:
    room = _Room()
    feed = _feed(room, progress_interval=3600)
    feed.changed()
    seen, _ = await _next_state(feed, 0)
    await asyncio.sleep(0.02)
    event = _event(1, EventType.JOB_QUEUED)
    frames = {feed.event_frame(event) for _ in range(200)}
    assert len(frames) == 1
    await asyncio.sleep(0.02)  # time for any extra rebuilds to show
    _, state = await _next_state(feed, seen)
    assert state == {"read": 2}
    await feed.close()
