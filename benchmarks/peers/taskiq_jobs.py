"""taskiq-redis stream broker (run: taskiq worker benchmarks.peers.taskiq_jobs:broker ...)."""

from __future__ import annotations

import os

from taskiq_redis import RedisStreamBroker

from benchmarks.record import mark

broker = RedisStreamBroker(url=os.environ["BENCH_REDIS_URL"], queue_name="bench")


@broker.task
async def noop(tag: str) -> None:
    mark(tag)
