"""Our queue's worker for the benchmark: one slot (one GPU), blocking claims, no HTTP hop yet."""

from __future__ import annotations

import os

import uvloop

from benchmarks.record import mark
from queue_manager.core.ids import WorkerId
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect


async def main() -> None:
    url = os.environ["BENCH_REDIS_URL"]
    settings = Settings(redis_url=url, max_queued_per_user=-1, max_running_per_user=-1)
    svc = QueueService(settings, connect(url))
    wid = WorkerId("bench")
    await svc.initialize()
    await svc.register_worker(wid, Capabilities(frozenset({"SaveImage"})), {})
    # Claims need no event hub (they block in Redis); the hub feeds WebSockets, not measured here.
    while True:
        job = await svc.claim(wid, wait=30)
        if job is None:
            continue
        mark(job.id)
        await svc.complete(job.id, wid, job.attempts)


if __name__ == "__main__":
    # The claim path runs inside the queue manager, which uvicorn runs on uvloop.
    uvloop.run(main())
