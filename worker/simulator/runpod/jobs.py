"""RunPod jobs and their lifecycle, kept in a book: IN_QUEUE (waiting for a worker, or for its
cold start) -> IN_PROGRESS -> COMPLETED | FAILED | TIMED_OUT, or CANCELLED from either of the
first two; an ended job is kept `ttl` seconds, then forgotten (its /status is 404). Pure: the
caller passes `now` (seconds, monotonic)."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def final(self) -> bool:
        return self not in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS)


@dataclass
class Job:
    id: str
    input: Any  # as the client sent it; the handler checks it, as worker-comfyui's does
    submitted: float
    ttl: float  # seconds the result is kept once the job ended
    execution_timeout: float | None = None  # seconds, from the request's policy
    status: JobStatus = JobStatus.IN_QUEUE
    worker: int | None = None  # the replica it was given to
    started: float | None = None
    ended: float | None = None
    output: dict[str, Any] | None = None
    error: str | None = None

    def status_json(self) -> dict[str, Any]:
        """`GET /status/{id}`: RunPod's fields, each once it is known."""
        body: dict[str, Any] = {"id": self.id, "status": self.status.value}
        if self.started is not None:
            body["delayTime"] = _ms(self.started - self.submitted)
            if self.ended is not None:
                body["executionTime"] = _ms(self.ended - self.started)
        if self.worker is not None and self.started is not None:
            body["workerId"] = f"replica-{self.worker}"
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class JobBook:
    jobs: dict[str, Job] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)

    def submit(
        self, job_input: Any, now: float, ttl: float, execution_timeout: float | None = None
    ) -> Job:
        job = Job(f"{uuid.uuid4()}-u1", job_input, now, ttl, execution_timeout)
        self.jobs[job.id] = job
        self.queue.append(job.id)
        return job

    def take_queued(self, worker: int) -> Job | None:
        """The oldest queued job, given to `worker` (still IN_QUEUE until it starts)."""
        while self.queue:
            job = self.jobs.get(self.queue.popleft())
            if job is not None and job.status is JobStatus.IN_QUEUE:
                job.worker = worker
                return job
        return None

    def start(self, job: Job, now: float) -> bool:
        """IN_PROGRESS, unless it was cancelled meanwhile."""
        if job.status is not JobStatus.IN_QUEUE:
            return False
        job.status, job.started = JobStatus.IN_PROGRESS, now
        return True

    def finish(
        self,
        job: Job,
        status: JobStatus,
        now: float,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """End it, unless it already ended (a cancelled job stays cancelled)."""
        if job.status.final:
            return
        job.status, job.ended, job.output, job.error = status, now, output, error

    def cancel(self, job: Job, now: float) -> None:
        self.finish(job, JobStatus.CANCELLED, now)

    def get(self, job_id: str, now: float) -> Job | None:
        self.prune(now)
        return self.jobs.get(job_id)

    def prune(self, now: float) -> None:
        for job in list(self.jobs.values()):
            if job.ended is not None and now > job.ended + job.ttl:
                del self.jobs[job.id]

    def counts(self) -> dict[str, int]:
        """`/health`'s jobs: how many are in each state (ended ones while they are kept)."""
        statuses = [job.status for job in self.jobs.values()]
        return {
            "completed": statuses.count(JobStatus.COMPLETED),
            "failed": statuses.count(JobStatus.FAILED) + statuses.count(JobStatus.TIMED_OUT),
            "inProgress": statuses.count(JobStatus.IN_PROGRESS),
            "inQueue": statuses.count(JobStatus.IN_QUEUE),
            "retried": 0,
        }


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
