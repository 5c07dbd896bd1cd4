"""Push dispatch beside pull dispatch, on the same ComfyUI simulator (zero step delay), with the
queue manager, the simulator and the pull agent as separate processes on loopback and a private
redis-server:

  per job     claimed -> finished of a tiny job (EmptyImage -> SaveImage): the GPU work is a
              few ms, the rest is the dispatch path (p50, ms)
  idle gap    a backlog on one slot / one worker: a job finishing -> the next one claimed
              (p50/p99, ms, from the jobs' timelines)

Each figure for an endpoint slot is printed beside the pull worker's, measured in the same run,
as a ratio. Figures are printed, never asserted. Usage: python -m benchmarks.push [--jobs 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.worker import SMALL, finished, gpu_room, pull_agent, stop
from queue_manager.core.endpoints import endpoint
from queue_manager.core.ids import UserId
from queue_manager.core.jobs import Job, Lane
from queue_manager.service.queue import QueueService

ROOT = Path(__file__).resolve().parent.parent
BENCH = UserId("bench")


@dataclass(frozen=True)
class Figures:
    per_job_ms: float
    gap_p50_ms: float
    gap_p99_ms: float
    jobs_per_s: float

    def line(self, what: str) -> str:
        return (
            f"{what:<24} per job p50 {self.per_job_ms:7.2f} ms   idle gap p50 "
            f"{self.gap_p50_ms:7.2f} ms  p99 {self.gap_p99_ms:7.2f} ms   "
            f"{self.jobs_per_s:6.1f} jobs/s"
        )


async def backlog(svc: QueueService, jobs: int) -> Figures:
    ids = [
        (await svc.submit(UserId(f"user{i % 20 + 1:03d}"), Lane.NORMAL, SMALL)).id
        for i in range(jobs)
    ]
    t0 = time.perf_counter()
    for job_id in ids:
        await finished(svc, job_id)
    elapsed = time.perf_counter() - t0
    done: list[Job] = sorted([await svc.job(j) for j in ids], key=lambda j: j.claimed_at or 0)
    per_job = [((j.finished_at or 0) - (j.claimed_at or 0)) * 1000 for j in done]
    gaps = sorted(
        ((b.claimed_at or 0) - (a.finished_at or 0)) * 1000 for a, b in itertools.pairwise(done)
    )
    return Figures(
        statistics.median(per_job),
        statistics.median(gaps),
        gaps[max(0, int(len(gaps) * 0.99) - 1)],
        jobs / elapsed,
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=60)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-pbench-", dir=ROOT.parent) as tmp:
        work = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            room = await stack.enter_async_context(gpu_room(work))
            svc, sim_url = room.svc, room.comfyui
            agent = await pull_agent(svc, room.client, "pull", room.manager, sim_url, work)
            stack.callback(stop, agent)
            await backlog(svc, 5)  # warm both ends up
            pull = await backlog(svc, a.jobs)
            stop(agent)  # SIGTERM: it leaves the room

            await svc.add_endpoint(endpoint("bench", sim_url), BENCH)
            while "bench.1" not in [w.id for w in await svc.gpu_workers()]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await backlog(svc, 5)
            push = await backlog(svc, a.jobs)
            await svc.remove_endpoint("bench", BENCH)

            print(f"{a.jobs} tiny jobs on one simulator (zero step delay), one at a time:")
            print(pull.line("pull worker (agent)"))
            print(push.line("push endpoint (comfyui)"))
            print(
                f"endpoint / pull worker: per job {push.per_job_ms / pull.per_job_ms:.2f}x, "
                f"idle gap p50 {push.gap_p50_ms / pull.gap_p50_ms:.2f}x, "
                f"throughput {push.jobs_per_s / pull.jobs_per_s:.2f}x"
            )


async def stopped_by_sigterm() -> None:
    """main(), cancelled on SIGTERM (a `timeout`), so that its processes are stopped too."""
    task = asyncio.create_task(main())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    asyncio.run(stopped_by_sigterm())
