"""A separate process that claims and completes jobs as fast as it can (for the double-claim
test): argv = redis url, key prefix, name; prints the claimed job ids as JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from redis.asyncio import Redis

from queue_manager.core.ids import WorkerId
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings


async def slot(svc: QueueService, wid: WorkerId, claimed: list[str]) -> None:
    await svc.workers.register(wid, Capabilities(frozenset({"SaveImage"})), {})
    while (job := await svc.jobs.claim(wid)) is not None:
        claimed.append(job.id)
        await svc.jobs.complete(job.id, wid, job.attempts, [])


async def main(url: str, prefix: str, name: str) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    svc = QueueService(Settings(redis_url=url, key_prefix=prefix, max_running_per_user=-1), redis)
    claimed: list[str] = []
    await asyncio.gather(*(slot(svc, WorkerId(f"{name}-{i}"), claimed) for i in range(4)))
    await redis.aclose()
    print(json.dumps(claimed))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
