"""A client of the private Redis, the queue manager's settings for it, and a clock that moves
only when a test says so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from tests.support.clock import FakeClock
from tests.support.settings import make_settings


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_server: RedisServer, prefix: str) -> Settings:
    return make_settings(redis_server, prefix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
