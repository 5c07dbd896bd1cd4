"""The minimal reference queue (method of shared/bench-reference/raw_queue.py, written here):
enqueue = one Lua round trip (HSET state + LPUSH), claim = blocking BLMOVE, then one Lua round
trip each for "started" and "complete" with a PUBLISH. No leases, retries, priorities or
fairness: a performance floor, not a queue."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import uvloop
from redis.asyncio import Redis

from benchmarks.record import mark

ENQUEUE = (
    "redis.call('HSET', KEYS[1], 'state', 'queued') return redis.call('LPUSH', KEYS[2], ARGV[1])"
)
STARTED = (
    "redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2]) "
    "return redis.call('PUBLISH', KEYS[2], ARGV[1])"
)
COMPLETE = (
    "redis.call('LREM', KEYS[1], 1, ARGV[1]) "
    "redis.call('HSET', KEYS[2], 'state', 'done') "
    "return redis.call('PUBLISH', KEYS[3], ARGV[2])"
)


async def main() -> None:
    r = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    started, complete = r.register_script(STARTED), r.register_script(COMPLETE)
    while True:
        raw = await r.blmove("raw:q", "raw:active", 0, "RIGHT", "LEFT")
        job_id = json.loads(raw)["id"]
        key = "raw:job:" + job_id
        await started(keys=[key, "raw:events"], args=[job_id, "w"])
        mark(job_id)
        await complete(keys=["raw:active", key, "raw:events"], args=[raw, job_id])


if __name__ == "__main__":
    # argv[1] == "uvloop": the same floor on the loop our queue manager runs on.
    if sys.argv[1:] == ["uvloop"]:
        uvloop.run(main())
    else:
        asyncio.run(main())
