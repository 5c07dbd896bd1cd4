"""The queue service on the private Redis: as built (`service`), and with its event hub and
reaper running (`live`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from tests.support.clock import FakeClock
from tests.support.waiting import until


@pytest.fixture
async def service(settings: Settings, redis: Redis, clock: FakeClock) -> QueueService:
    svc = QueueService(settings, redis, clock)
    await svc.initialize()
    return svc


@pytest.fixture
async def live(service: QueueService) -> AsyncIterator[QueueService]:
    async with service.running():
        await until(service.background_ok, 5, "the hub reading")
        yield service
