"""The product's Redis client lets a task that is told to stop, stop (store/connection.py)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.store.connection import connect

# Each round cancels a loop of Redis calls wherever it happens to be; on Python 3.11 with
# redis-py's own send timeout (asyncio.wait_for) about three cancellations in four were lost.
ROUNDS = 40


async def _busy(redis: Redis, key: str, calls: int, made: asyncio.Event) -> None:
    """Redis calls until cancelled; `made` is set after the first `calls` of them."""
    done = 0
    while True:
        await redis.hset(key, "n", done)
        done += 1
        if done == calls:
            made.set()


async def test_a_loop_of_redis_calls_stops_at_every_cancellation(
    redis_server: RedisServer, prefix: str
) -> None:
    redis = connect(redis_server.url)
    try:
        for round_ in range(ROUNDS):
            made = asyncio.Event()  # a few calls in, at a varying point
            task = asyncio.create_task(_busy(redis, f"{prefix}busy", round_ % 5 + 1, made))
            await made.wait()
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=10)
            while not task.done():  # lost: stop it for good before failing
                task.cancel()
                await asyncio.wait({task}, timeout=1)
            assert done and task.cancelled(), f"round {round_}: the cancellation was lost"
        assert await redis.ping()  # the cancelled sends left no half-written command behind
    finally:
        await redis.aclose()
