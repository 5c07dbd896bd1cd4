"""A Redis restart loses nothing (AOF) and the hub and blocked claims carry on afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from queue_manager.store.connection import connect
from tests.support.jobs import add_worker, in_claim, prompt, user
from tests.support.settings import make_settings
from tests.support.waiting import until


async def test_queue_survives_a_redis_restart_and_claims_wake_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    redis = connect(server.url)
    try:
        svc = QueueService(make_settings(server, "r:"), redis)
        async with svc.running():
            w = await add_worker(svc)
            kept = await svc.submit(user(1), Lane.NORMAL, prompt())
            server.stop()
            server.start()
            job = await svc.user_job(user(1), kept.id)  # the client reconnects by itself
            assert job.status is JobStatus.QUEUED
            claimed = await svc.claim(w, wait=5)
            assert claimed is not None and claimed.id == kept.id
            await svc.complete(kept.id, w, 1)
            # The hub lost its blocking read in the restart; a claim blocked now must still be
            # woken by the next submission, not by its timeout.
            waiter = asyncio.create_task(svc.claim(w, wait=30))

            await until(lambda: in_claim(redis, "r:", w), 5, "the claim waiting")
            assert not waiter.done()
            later = await svc.submit(user(2), Lane.NORMAL, prompt())
            woken = await asyncio.wait_for(waiter, 10)
            assert woken is not None and woken.id == later.id
    finally:
        await redis.aclose()
        server.stop()
