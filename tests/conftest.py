"""Shared fixtures: one private redis-server per test session, a fresh key prefix per test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store import accounts
from queue_manager.store.connection import connect

_prefixes = itertools.count()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost makes every HTTP Basic request take tens of ms; tests
    hash with the cheapest parameters (same code path, same format)."""
    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    accounts._hasher = real


class FakeClock:
    """Time that only moves when a test says so (leases expire on demand, never by waiting)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


def make_settings(redis_server: RedisServer, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_server.url,
        "key_prefix": prefix,
        "max_queued_per_user": 100,
        "max_running_per_user": -1,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
async def service(
    redis_server: RedisServer, redis: Redis, prefix: str, clock: FakeClock
) -> QueueService:
    svc = QueueService(make_settings(redis_server, prefix), redis, clock)
    await svc.initialize()
    return svc


EVERYTHING = Capabilities(frozenset({"EmptyImage", "SaveImage", "ImageInvert", "KSampler"}))


async def add_worker(
    svc: QueueService, name: str = "gpu1", caps: Capabilities = EVERYTHING
) -> WorkerId:
    wid = WorkerId(name)
    await svc.register_worker(wid, caps, {"gpu": "test"})
    return wid


def prompt(*class_types: str, model: str | None = None) -> dict[str, object]:
    nodes: dict[str, object] = {
        str(i): {"class_type": ct, "inputs": {}}
        for i, ct in enumerate(class_types or ("SaveImage",))
    }
    if model:
        nodes["m"] = {"class_type": "KSampler", "inputs": {"ckpt_name": model}}
    return nodes


def user(n: int) -> UserId:
    return UserId(f"user{n:03d}")
