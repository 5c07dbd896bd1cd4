"""Several queue-manager processes on one Redis never hand out the same job twice."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.jobs import JobStatus
from queue_manager.store import ControlStore, JobStore
from queue_manager.store.keys import Keys
from tests.support.jobs import new_job, user
from tests.support.paths import ROOT


@pytest.mark.slow
@pytest.mark.timeout(300)  # 3000 jobs; each claimer process may take up to 120 s
async def test_two_processes_claiming_concurrently_never_double_claim(
    jobs: JobStore,
    control: ControlStore,
    redis: Redis,
    keys: Keys,
    redis_server: RedisServer,
    prefix: str,
) -> None:
    n = 3000
    await control.set_room_limits(max_queued=-1)
    ids = [(await jobs.submit(new_job(user(i % 20)))).id for i in range(n)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.claimer_process",
            redis_server.url,
            prefix,
            name,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for name in ("qm-a", "qm-b")
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    per_process = [json.loads(out) for out, _ in outputs]
    claimed = Counter(j for got in per_process for j in got)
    assert all(len(got) > 0 for got in per_process), "both processes must have taken part"
    assert max(claimed.values()) == 1, "a job was handed out twice"
    assert set(claimed) == set(ids)
    stats = await redis.hgetall(keys.stats)
    assert stats.get(JobStatus.COMPLETED.value) == str(n)
    assert int(stats.get(JobStatus.RUNNING.value, 0)) == 0
