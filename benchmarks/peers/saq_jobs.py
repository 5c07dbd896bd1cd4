"""saq worker settings (run: saq benchmarks.peers.saq_jobs.settings)."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from benchmarks.record import mark

queue = Queue.from_url(os.environ["BENCH_REDIS_URL"], name="bench")


async def noop(ctx: Any, *, tag: str) -> None:
    mark(tag)


settings = {"queue": queue, "functions": [noop], "concurrency": 1}
