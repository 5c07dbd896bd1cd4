"""Session-wide fixtures: one private redis-server per test session, a fresh key prefix per
test, a clock that moves only when told, and cheap password hashing everywhere."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.store import accounts
from queue_manager.store.connection import connect
from tests.support.clock import FakeClock

_prefixes = itertools.count()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost makes every HTTP Basic request take tens of ms; tests
    hash with the cheapest parameters (same code path, same format)."""
    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    accounts._hasher = real


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{next(_prefixes)}:"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
