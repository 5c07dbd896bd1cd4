"""Run times of finished jobs in Redis: the latest few per GPU and shape, bounded.

Lists of `"<seconds> <steps>"`, newest first (`core.runtimes.Sample`), each trimmed to its cap
in the same transaction that adds to it:

  {p}rt:gpu:{gpu}:{family}   one family of jobs on one GPU (a worker, or an endpoint's slots)
  {p}rt:family:{family}      one family on any GPU
  {p}rt:gpu:{gpu}            any job on one GPU
  {p}rt:all                  any job: the room's recent run times

Family lists expire a week after their last run, so a room that tried a thousand graphs keeps
only what it still runs. The shape of each job is a field of its hash (`shape`, set at submit).

How participants come back (`core.eta.Returns`):

  {p}rt:last                 hash: user -> "<when their last job ended> <its shape>"
  {p}rt:think                list: seconds from a user's result to their next Run, newest first
                             (written by submit.lua, bounded by MAX_THINK and KEPT_THINK)
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from queue_manager.core.eta import Returns
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.runtimes import RunHistory, Sample, Shape, parse_shape
from queue_manager.store.keys import Keys

KEPT_EXACT = 20
KEPT_FAMILY = 40
KEPT_GPU = 40
KEPT_RECENT = 100
KEPT_THINK = 50
# A Run this long after the user's last result is a new session, not a look-and-tweak.
MAX_THINK = 1800.0
# Fewer measured think times than this: the room's habit is not known yet.
THINK_ENOUGH = 3
FAMILY_KEPT_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class FinishedRun:
    user: UserId
    worker: str
    shape: Shape
    claimed_at: float | None
    started_at: float | None
    finished_at: float | None


class RunTimeStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def finished_run(self, job_id: JobId) -> FinishedRun | None:
        """When a completed job was claimed, started and finished, and where it ran."""
        fields = ("status", "user", "worker", "shape", "claimed_at", "started_at", "finished_at")
        got = cast("list[str | None]", await self._redis.hmget(self._keys.job(job_id), fields))
        status, user, worker, shape, *times = got
        if status != "completed" or not worker or not user:
            return None
        claimed, started, finished = (float(t) if t else None for t in times)
        return FinishedRun(UserId(user), worker, parse_shape(shape), claimed, started, finished)

    async def note_result(self, user: UserId, at: float, shape: Shape) -> None:
        """The user's latest job ended `at` (what they ran, for the Runs they will make)."""
        await self._redis.hset(self._keys.run_times("last"), user, f"{at!r} {shape.key()}")

    async def returns(self, now: float) -> Returns:
        """The room's habit of coming back, as the estimate reads it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.run_times("last"))
            pipe.lrange(self._keys.run_times("think"), 0, -1)
            last, thinks = await pipe.execute()
        ended, shapes = {}, {}
        for user, raw in cast("dict[str, str]", last).items():
            at, _, shape = raw.partition(" ")
            ended[UserId(user)] = max(0.0, now - float(at))
            shapes[UserId(user)] = parse_shape(shape)
        think = [float(t) for t in thinks]
        served = await self._served(list(ended))
        typical = statistics.median(think) if len(think) >= THINK_ENOUGH else None
        return Returns(typical, ended, served, shapes)

    async def _served(self, users: list[UserId]) -> dict[UserId, float]:
        if not users:
            return {}
        stamps = await self._redis.hmget(self._keys.served, users)
        return {u: float(s) for u, s in zip(users, stamps, strict=True) if s is not None}

    async def record(self, gpu: str, shape: Shape, sample: Sample) -> None:
        """Add one run time to every list it belongs to, each kept to its cap."""
        rt = self._keys.run_times
        lists = [(rt("gpu", gpu), KEPT_GPU), (rt("all"), KEPT_RECENT)]
        if shape.family:
            lists += [
                (rt("gpu", gpu, shape.family), KEPT_EXACT),
                (rt("family", shape.family), KEPT_FAMILY),
            ]
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, kept in lists:
                pipe.lpush(key, sample.encode())
                pipe.ltrim(key, 0, kept - 1)
            if shape.family:
                for key, _ in lists[2:]:
                    pipe.expire(key, FAMILY_KEPT_SECONDS)
            await pipe.execute()

    async def shapes(self, job_ids: Iterable[JobId]) -> dict[JobId, Shape]:
        """Each job's shape, in one round trip."""
        ids = list(job_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(self._keys.job(job_id), "shape")
            found = await pipe.execute()
        return {job_id: parse_shape(raw) for job_id, raw in zip(ids, found, strict=True)}

    async def history(self, gpus: Iterable[str], shapes: Iterable[Shape]) -> RunHistory:
        """The run times an estimate for these GPUs and shapes may use, in one round trip."""
        gpu_list = sorted(set(gpus))
        families = sorted({s.family for s in shapes if s.family})
        exact = [(g, f) for g in gpu_list for f in families]
        rt = self._keys.run_times
        async with self._redis.pipeline(transaction=False) as pipe:
            for g, f in exact:
                pipe.lrange(rt("gpu", g, f), 0, -1)
            for f in families:
                pipe.lrange(rt("family", f), 0, -1)
            for g in gpu_list:
                pipe.lrange(rt("gpu", g), 0, -1)
            pipe.lrange(rt("all"), 0, -1)
            rows = iter(await pipe.execute())
        return RunHistory(
            exact={pair: _samples(next(rows)) for pair in exact},
            family={f: _samples(next(rows)) for f in families},
            gpu={g: _samples(next(rows)) for g in gpu_list},
            recent=_samples(next(rows)),
        )


def _samples(raw: list[str]) -> tuple[Sample, ...]:
    return tuple(s for s in (Sample.decode(r) for r in raw) if s is not None)
