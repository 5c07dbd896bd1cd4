"""A separate process that claims and completes jobs as fast as it can (for the double-claim
test): argv = redis url, key prefix, name; prints the claimed job ids as JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from redis.asyncio import Redis

from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.requirements import Capabilities
from queue_manager.store import JobStore, ScriptRunner, WorkerStore
from queue_manager.store.keys import Keys


async def slot(jobs: JobStore, workers: WorkerStore, wid: WorkerId, claimed: list[JobId]) -> None:
    await workers.register(wid, Capabilities(frozenset({"SaveImage"})), {})
    while (job := await jobs.claim(wid)) is not None:
        claimed.append(job.id)
        await jobs.complete(job.id, wid, job.attempts)


async def main(url: str, prefix: str, name: str) -> None:
    redis = Redis.from_url(url, decode_responses=True)
    runner = ScriptRunner(redis, Keys(prefix))
    jobs, workers = JobStore(runner), WorkerStore(runner)
    claimed: list[JobId] = []
    await asyncio.gather(*(slot(jobs, workers, WorkerId(f"{name}-{i}"), claimed) for i in range(4)))
    await redis.aclose()
    print(json.dumps(claimed))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
