"""The stores on the private Redis, built as `QueueService` builds them, with the room's
controls initialised from the test's settings (the fake clock stamps every script)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from queue_manager.core.control import RoomControl
from queue_manager.settings import Settings
from queue_manager.store import ControlStore, JobStore, ScriptRunner, WorkerStore
from queue_manager.store.accounts import AccountStore
from queue_manager.store.keys import Keys
from tests.support.clock import FakeClock


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def runner(redis: Redis, keys: Keys, clock: FakeClock) -> ScriptRunner:
    return ScriptRunner(redis, keys, clock)


@pytest.fixture
async def control(runner: ScriptRunner, settings: Settings) -> ControlStore:
    store = ControlStore(runner)
    defaults = RoomControl(
        paused=False,
        mode=settings.scheduling_mode,
        max_queued=settings.max_queued_per_user,
        max_running=settings.max_running_per_user,
        max_attempts=settings.max_attempts,
    )
    await store.initialize(
        defaults, events_maxlen=settings.events_maxlen, lease_seconds=settings.lease_seconds
    )
    return store


@pytest.fixture
def jobs(runner: ScriptRunner, control: ControlStore) -> JobStore:
    """The job store of a room whose controls are set (as after `QueueService.initialize`)."""
    return JobStore(runner)


@pytest.fixture
def workers(runner: ScriptRunner, control: ControlStore) -> WorkerStore:
    return WorkerStore(runner)


@pytest.fixture
def accounts(redis: Redis, keys: Keys) -> AccountStore:
    return AccountStore(redis, keys)
