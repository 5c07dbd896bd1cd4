"""`announce.lua` on a real Redis: the event as sent, the kept value in the same step, and
nothing but a workshop event type accepted."""

from __future__ import annotations

import json

import pytest

from queue_manager.core.events import EventType
from queue_manager.store import ControlStore, EventLog, ScriptRunner
from queue_manager.store.announcements import AnnouncementStore


async def test_an_announcement_is_one_event_with_its_data_sent_as_it_is(
    runner: ScriptRunner, control: ControlStore
) -> None:
    store, log = AnnouncementStore(runner), EventLog(runner.redis, runner.keys)
    # An empty list and a long float survive (Lua's cjson would turn [] into {}).
    data = json.dumps({"nodes": [], "seed": 0.12345678901234567, "name": "Step 2"})
    event_id = await store.announce(EventType.WORKFLOW_SENT, data)
    (event,) = await log.read("0-0")
    assert event.id == event_id
    assert (event.type, event.user, event.job, event.worker) == (
        EventType.WORKFLOW_SENT,
        None,
        None,
        None,
    )
    assert event.data == json.loads(data)


async def test_the_kept_value_changes_with_its_announcement(
    runner: ScriptRunner, control: ControlStore
) -> None:
    store, log = AnnouncementStore(runner), EventLog(runner.redis, runner.keys)
    await store.announce(EventType.OUTPUT_SHOWN, '{"id": "a"}', ("showcase", '{"job": "j1"}'))
    assert await store.kept("showcase") == '{"job": "j1"}'
    await store.announce(EventType.OUTPUT_SHOWN, '{"id": null}', ("showcase", ""))
    assert await store.kept("showcase") is None
    assert [e.data for e in await log.read("0-0")] == [{"id": "a"}, {"id": None}]


async def test_a_job_event_cannot_be_forged_through_it(
    runner: ScriptRunner, control: ControlStore
) -> None:
    store, log = AnnouncementStore(runner), EventLog(runner.redis, runner.keys)
    with pytest.raises(ValueError, match="room-wide"):
        await store.announce(EventType.JOB_COMPLETED, "{}", ("showcase", "x"))
    assert await log.read("0-0") == []
    assert await store.kept("showcase") is None
