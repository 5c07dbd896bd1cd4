"""RunPod's queue in front of its workers: each replica runs one job at a time; a queued job
goes to a free replica (warm ones first), stays IN_QUEUE through that replica's cold start,
then runs (`worker.simulator.runpod.handler`). Cancelling or timing out a running job
interrupts its prompt; a replica stopped under a job fails it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from worker.simulator.pool import ReplicaPool
from worker.simulator.replica import Replica, ReplicaState, ReplicaStopped
from worker.simulator.runpod.handler import WorkerLost, run_job
from worker.simulator.runpod.jobs import Job, JobBook, JobStatus
from worker.simulator.runpod.results import Outcome, parse_input

log = logging.getLogger(__name__)

REPLICA_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class Dispatcher:
    def __init__(self, pool: ReplicaPool, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.clock = clock
        self.book = JobBook()
        self.client = httpx.AsyncClient(timeout=REPLICA_TIMEOUT)
        self._wake = asyncio.Event()
        self._busy: set[int] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ended: dict[str, asyncio.Event] = {}

    # -- use cases ------------------------------------------------------------------------

    def submit(self, job_input: Any, ttl: float, execution_timeout: float | None) -> Job:
        job = self.book.submit(job_input, self.clock(), ttl, execution_timeout)
        self._ended[job.id] = asyncio.Event()
        self._wake.set()
        log.info("runpod job %s queued", job.id)
        return job

    def find(self, job_id: str) -> Job | None:
        return self.book.get(job_id, self.clock())

    def cancel(self, job: Job) -> None:
        if not job.status.final:
            log.info("runpod job %s cancelled (%s)", job.id, job.status.value)
        self.book.cancel(job, self.clock())
        task = self._running.get(job.id)
        if task is not None:
            task.cancel()
        self._ended_now(job)

    def purge_queue(self) -> int:
        queued = [j for j in self.book.jobs.values() if j.status is JobStatus.IN_QUEUE]
        for job in queued:
            if job.id not in self._running:
                self.cancel(job)
        return len(queued)

    async def wait(self, job: Job, seconds: float) -> None:
        """Return when `job` ended, or after `seconds`."""
        ended = self._ended.get(job.id)
        if ended is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await ended.wait()

    def workers(self) -> dict[str, int]:
        states = [r.state for r in self.pool.replicas]
        warm_free = [r for r in self.pool.replicas if r.state is ReplicaState.WARM]
        return {
            "idle": sum(1 for r in warm_free if r.index not in self._busy),
            "initializing": states.count(ReplicaState.STARTING),
            "ready": states.count(ReplicaState.WARM),
            "running": len(self._busy),
            "throttled": 0,
            "unhealthy": 0,
        }

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Owned by the app's lifespan; cancelling it cancels the jobs it started."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self.book.prune(self.clock())
                self._hand_out()
        finally:
            for task in list(self._running.values()):
                task.cancel()
            if self._running:
                await asyncio.wait(set(self._running.values()))
            await self.client.aclose()

    def _hand_out(self) -> None:
        while (replica := self._free_replica()) is not None:
            job = self.book.take_queued(replica.index)
            if job is None:
                return
            self._busy.add(replica.index)
            task = asyncio.create_task(self._work(job, replica), name=f"runpod-{job.id}")
            self._running[job.id] = task

    def _free_replica(self) -> Replica | None:
        free = [r for r in self.pool.replicas if r.index not in self._busy]
        free.sort(key=lambda r: r.state is not ReplicaState.WARM)  # no cold start if avoidable
        return free[0] if free else None

    async def _work(self, job: Job, replica: Replica) -> None:
        try:
            async with replica.in_use():
                await replica.ready()  # the job stays IN_QUEUE through a cold start
                if self.book.start(job, self.clock()):
                    log.info("runpod job %s running on replica %d", job.id, replica.index)
                    self._end(job, await self._execute(job, replica))
        except ReplicaStopped:
            self._end(job, Outcome.failed("worker stopped before the job started"))
        except WorkerLost as exc:
            self._end(job, Outcome.failed(f"worker lost: {exc}"))
        except Exception as exc:  # one job's trouble never stops the queue
            log.exception("runpod job %s failed", job.id)
            self._end(job, Outcome.failed(f"An unexpected error occurred: {exc}"))
        finally:
            self._busy.discard(replica.index)
            self._running.pop(job.id, None)
            self._ended_now(job)
            self._wake.set()

    async def _execute(self, job: Job, replica: Replica) -> Outcome | JobStatus:
        parsed = parse_input(job.input)
        if isinstance(parsed, str):
            return Outcome.failed(parsed)
        url = replica.url
        if url is None:
            raise WorkerLost(f"replica {replica.index} went away")
        try:
            async with asyncio.timeout(job.execution_timeout):
                return await run_job(self.client, url, parsed)
        except TimeoutError:
            return JobStatus.TIMED_OUT

    def _end(self, job: Job, result: Outcome | JobStatus) -> None:
        now = self.clock()
        if isinstance(result, JobStatus):
            self.book.finish(job, result, now)
        elif result.error is not None:
            self.book.finish(job, JobStatus.FAILED, now, result.output, result.error)
        else:
            self.book.finish(job, JobStatus.COMPLETED, now, result.output)
        log.info("runpod job %s %s", job.id, job.status.value)

    def _ended_now(self, job: Job) -> None:
        ended = self._ended.pop(job.id, None) if job.status.final else None
        if ended is not None:
            ended.set()
