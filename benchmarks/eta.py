"""How good the ETA shown at submission is: a simulated workshop on the real queue.

The real queue and service (a private redis-server, the Lua claim, fairness and running limits,
run times recorded as jobs complete) are driven by simulated GPU workers on a simulated clock:
each worker claims through the service when free, reports ComfyUI's start and its sampler
progress, and completes its job when the job's run time has passed on the clock. Nothing
sleeps, so hours of a workshop take seconds, and every figure comes from the same code path a
participant's page reads (`workshop_status`).

  room        users submitting bursts of 1-3 jobs of 5..40 sampler steps, two GPUs of
              different speed, at most one running job per user (the default); two ways of
              arriving, each run on its own:
                iterate   a participant looks at their result, changes something and runs
                          again: a burst when the last one ended plus a think time (45 s on
                          average, exponential; one time in seven a 3-10 min break)
                bursts    each participant's bursts on their own clock (exponential gaps,
                          the room's GPUs about fully loaded), whatever happened to the last
  run time    (2 s + 0.5 s per step) x the GPU's speed x noise (lognormal, sigma 0.1)
  shown       each job's `eta_start` / `eta_finish` right after it was submitted
  truth       when it was claimed and when it finished, from the job's own record
  baseline    "naive": position x the mean run time of the jobs finished so far (the room's
              average), and "naive / GPUs": the same divided by the number of GPUs

Figures: the median and p90 absolute error of start and finish (seconds), the relative error
of the finish (|error| / time to finish), each beside the baselines measured in the same run
(ratio = baseline error / ETA error: above 1, the ETA is better), and the cost of one status
read with the estimate beside the same read without it. Printed, never asserted.
Usage: python -m benchmarks.eta [--jobs 300] [--users 10] [--seed 1] [--arrivals iterate|bursts]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import heapq
import itertools
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.errors import LimitExceeded
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.core.runtimes import DEFAULT_RUN_SECONDS
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect

ROOT = Path(__file__).resolve().parent.parent
GPUS = {WorkerId("gpu-a"): 1.0, WorkerId("gpu-b"): 1.3}  # seconds x speed
OVERHEAD, PER_STEP, NOISE = 2.0, 0.5, 0.1
THINK, BREAK_CHANCE, BREAK = 45.0, 1 / 7, (180.0, 600.0)


def graph(steps: int, seed: int) -> dict[str, object]:
    """The default text-to-image graph (as tests/support/graphs.sampler)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512,
                                                           "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "s"}},
    }  # fmt: skip


CAPS = Capabilities(frozenset(n["class_type"] for n in graph(1, 0).values()))  # type: ignore[index]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Shown:
    submitted: float
    start: float | None
    finish: float | None
    naive_start: float
    naive_per_gpu: float
    mean: float


@dataclass
class Room:
    svc: QueueService
    clock: Clock
    rng: random.Random
    shown: dict[JobId, Shown] = field(default_factory=dict)
    running: dict[WorkerId, tuple[JobId, int, float, float, int]] = field(default_factory=dict)
    finished: list[float] = field(default_factory=list)
    planned: int = 0
    limit: int = 0
    iterate: bool = False
    outstanding: dict[UserId, int] = field(default_factory=dict)
    owner: dict[JobId, UserId] = field(default_factory=dict)
    refused: int = 0
    status_ms: list[float] = field(default_factory=list)
    positions_ms: list[float] = field(default_factory=list)
    _events: list[tuple[float, int, Callable[[], object]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def at(self, when: float, action: Callable[[], object]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    async def run(self) -> None:
        while self._events:
            when, _, action = heapq.heappop(self._events)
            self.clock.now = when
            result = action()
            if asyncio.iscoroutine(result):
                await result
            await self.claim_all()

    async def claim_all(self) -> None:
        for worker, speed in GPUS.items():
            if worker in self.running:
                continue
            job = await self.svc.claim(worker, wait=0)
            if job is None:
                continue
            steps = int(job.prompt_json.split('"steps":')[1].split(",")[0])
            noise = math.exp(self.rng.gauss(0, NOISE))
            seconds = (OVERHEAD + PER_STEP * steps) * speed * noise
            began = self.clock.now
            self.running[worker] = (job.id, job.attempts, began, seconds, steps)
            await self.svc.report(job.id, worker, job.attempts, EventType.JOB_STARTED, {})
            self.at(began + seconds, functools.partial(self.finish, worker))

    async def finish(self, worker: WorkerId) -> None:
        job_id, attempt, _, seconds, _ = self.running.pop(worker)
        await self.svc.complete(job_id, worker, attempt)
        self.finished.append(seconds)
        user = self.owner[job_id]
        self.outstanding[user] -= 1
        if self.iterate and not self.outstanding[user]:
            think = (self.rng.uniform(*BREAK) if self.rng.random() < BREAK_CHANCE
                     else self.rng.expovariate(1 / THINK))  # fmt: skip
            self.burst(user, self.clock.now + think)

    def burst(self, user: UserId, when: float) -> None:
        """1-3 jobs of one step count, half a second apart (a few Run clicks)."""
        steps = self.rng.randint(5, 40)
        for i in range(min(self.rng.randint(1, 3), self.limit - self.planned)):
            self.at(when + i * 0.5, functools.partial(self.submit, user, steps))
            self.planned += 1

    async def report_progress(self) -> None:
        """Where each running job's sampler is now, as ComfyUI reports it step by step."""
        for worker, (job_id, attempt, began, seconds, steps) in self.running.items():
            done = min(steps, int(steps * (self.clock.now - began) / seconds))
            data: dict[str, object] = {"value": done, "max": steps, "node": "3"}
            await self.svc.report(job_id, worker, attempt, EventType.JOB_PROGRESS, data)  # type: ignore[arg-type]

    async def submit(self, user: UserId, steps: int) -> None:
        await self.report_progress()
        try:
            done = await self.svc.submit(
                user, Lane.NORMAL, graph(steps, self.rng.randrange(1 << 30))
            )
        except LimitExceeded:
            self.refused += 1
            return
        self.owner[done.id] = user
        self.outstanding[user] = self.outstanding.get(user, 0) + 1
        t0 = time.perf_counter()
        status = await self.svc.workshop_status(user, self.clock.now)
        self.status_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()  # the status read as it was before the estimate
        await self.svc.user_jobs(user)
        await self.svc.positions()
        self.positions_ms.append((time.perf_counter() - t0) * 1000)
        [entry] = [j for j in status["jobs"] if j["prompt_id"] == done.id]
        mean = statistics.fmean(self.finished) if self.finished else DEFAULT_RUN_SECONDS
        position = entry["position"] or 1
        self.shown[done.id] = Shown(
            self.clock.now, entry["eta_start"], entry["eta_finish"],
            position * mean, position * mean / len(GPUS), mean,
        )  # fmt: skip


def schedule(room: Room, users: int, jobs: int, arrivals: str) -> None:
    """Each participant's first burst within two minutes; then `iterate` (the next burst when
    the last one ended plus a think time, see `Room.finish`) or `bursts` (on their own clock,
    about as much work as the two GPUs can do, so the queue grows and shrinks)."""
    rng, t = room.rng, room.clock.now
    room.limit, room.iterate = jobs, arrivals == "iterate"
    names = [UserId(f"user{u + 1:03d}") for u in range(users)]
    if room.iterate:
        for user in names:
            room.burst(user, t + rng.uniform(0, 120))
        return
    capacity = len(GPUS) / statistics.fmean(
        [(OVERHEAD + PER_STEP * 22.5) * s for s in GPUS.values()]
    )  # jobs per second
    gap = users * 2.0 / capacity  # a user's bursts (2 jobs on average) apart, at full load
    starts = {user: t + rng.uniform(0, gap) for user in names}
    while room.planned < jobs:
        user, when = min(starts.items(), key=lambda kv: kv[1])
        room.burst(user, when)
        starts[user] = when + rng.expovariate(1 / gap)


def errors(room: Room, actual: dict[JobId, tuple[float, float]], pick: str) -> list[float]:
    out = []
    for job_id, shown in room.shown.items():
        start, finish = actual[job_id]
        guess = getattr(shown, pick)
        if guess is None:
            continue
        truth = start if "start" in pick else finish
        out.append(abs(guess - truth))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _seconds(value: float) -> str:
    return f"{value:6.1f} s"


def _percent(value: float) -> str:
    return f"{value * 100:5.0f} %"


def _ratio(base: float, ours: float) -> str:
    return f"{base / ours:5.2f}x" if ours > 0 else "  inf"


def line(label: str, ours: list[float], base: list[float], unit: str = "s") -> str:
    fmt = _seconds if unit == "s" else _percent
    o50, o90, b50, b90 = pct(ours, 0.5), pct(ours, 0.9), pct(base, 0.5), pct(base, 0.9)
    return (f"  {label:<26} ETA p50 {fmt(o50)}  p90 {fmt(o90)}   baseline p50 {fmt(b50)}  "
            f"p90 {fmt(b90)}   ratio p50 {_ratio(b50, o50)}  p90 {_ratio(b90, o90)}")  # fmt: skip


async def measure(room: Room) -> None:
    actual: dict[JobId, tuple[float, float]] = {}
    for job_id, shown in room.shown.items():
        job = await room.svc.job(job_id)
        actual[job_id] = ((job.claimed_at or 0) - shown.submitted,
                          (job.finished_at or 0) - shown.submitted)  # fmt: skip
    unknown = sum(1 for s in room.shown.values() if s.start is None)
    print(f"{len(room.shown)} jobs submitted ({room.refused} refused at the queued limit), "
          f"{unknown} shown without an estimate; GPUs {dict(GPUS)} (run time x speed)")  # fmt: skip
    waits = [a[0] for a in actual.values()]
    print(f"  actual wait before start: p50 {pct(waits, 0.5):.1f} s, p90 {pct(waits, 0.9):.1f} s")
    for base, name in (("naive_start", "naive"), ("naive_per_gpu", "naive / GPUs")):
        print(f"baseline: {name} (position x mean run time{' / GPUs' if '/' in name else ''})")
        print(line("start, abs error", errors(room, actual, "start"), errors(room, actual, base)))
        ours_f = errors(room, actual, "finish")
        base_f = [abs(getattr(s, base) + s.mean - actual[j][1]) for j, s in room.shown.items()
                  if s.finish is not None]  # fmt: skip
        print(line("finish, abs error", ours_f, base_f))
        totals = [actual[j][1] for j, s in room.shown.items() if s.finish is not None]
        print(line("finish, relative error", [e / t for e, t in zip(ours_f, totals, strict=True)],
                   [e / t for e, t in zip(base_f, totals, strict=True)], unit="%"))  # fmt: skip
    s50, p50 = statistics.median(room.status_ms), statistics.median(room.positions_ms)
    print(f"cost: a participant's status read with the estimate p50 {s50:.2f} ms, without "
          f"it (their jobs and positions) {p50:.2f} ms (x{s50 / p50:.1f}), "
          f"same Redis, same queue")  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--arrivals", choices=["iterate", "bursts", "both"], default="both")
    a = ap.parse_args()
    for arrivals in ("iterate", "bursts") if a.arrivals == "both" else (a.arrivals,):
        await scenario(a.jobs, a.users, a.seed, arrivals)


async def scenario(jobs: int, users: int, seed: int, arrivals: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cw-etabench-", dir=ROOT.parent) as tmp:
        redis = RedisServer(Path(tmp) / "redis", appendonly=False)
        redis.start()
        client = connect(redis.url)
        try:
            clock = Clock()
            svc = QueueService(Settings(redis_url=redis.url), client, clock)
            await svc.initialize()
            for worker in GPUS:
                await svc.register_worker(worker, CAPS, {})
            room = Room(svc, clock, random.Random(seed))
            schedule(room, users, jobs, arrivals)
            t0 = time.perf_counter()
            await room.run()
            print(f"== arrivals: {arrivals}. Simulated {(clock.now - 1_800_000_000.0) / 60:.0f} "
                  f"min of workshop in {time.perf_counter() - t0:.1f} s (real queue and "
                  f"service, simulated GPUs and clock), {users} users, seed {seed}")  # fmt: skip
            await measure(room)
        finally:
            await client.aclose()
            redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
