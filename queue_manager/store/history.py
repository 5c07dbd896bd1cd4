"""Forgetting the room's finished jobs, for the next workshop (`lua/history_clear.lua`).

Jobs have no room-wide index (a participant's history delete takes a job out of their list and
keeps it for the instructor), so they are found by scanning for their keys, and forgotten in
batches: each batch is one script that checks every job's status itself, so a job queued or
claimed meanwhile is never touched.
"""

from __future__ import annotations

import re

from queue_manager.core.ids import is_job_id
from queue_manager.store.scripts import ScriptRunner

BATCH = 200
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class HistoryStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._runner = runner
        self._redis = runner.redis
        self._prefix = runner.keys.prefix

    async def live_jobs(self) -> tuple[int, int]:
        """(queued, running) jobs in the room."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hvals(self._runner.keys.queued)
            pipe.hvals(self._runner.keys.running)
            queued, running = await pipe.execute()
        return sum(int(n) for n in queued), sum(int(n) for n in running)

    async def clear(self) -> int:
        """Forget every finished job and the room's records of them; returns how many jobs."""
        forgotten = 0
        batch: list[str] = []
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix) + "job:*"
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            job_id = str(key)[len(self._prefix) + len("job:") :]
            if is_job_id(job_id):  # not a timeline or outputs key
                batch.append(job_id)
            if len(batch) >= BATCH:
                forgotten += int(await self._runner.run("history_clear", "jobs", *batch))
                batch = []
        if batch:
            forgotten += int(await self._runner.run("history_clear", "jobs", *batch))
        await self._runner.run("history_clear", "end")
        return forgotten
