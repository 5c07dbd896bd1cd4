"""The queue as the rest of the product uses it: submit, claim (blocking), workers, positions.

Route handlers call one method here; this module ties the pure policy (prompts, requirements,
scheduling) to the stores and the event hub, and owns the background loops (hub, reaper).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping

from pydantic import JsonValue
from redis.asyncio import Redis

from queue_manager.core.control import RoomControl
from queue_manager.core.errors import InvalidTransition, JobNotFound, PromptRejected
from queue_manager.core.ids import JobId, UserId, WorkerId, new_job_id
from queue_manager.core.jobs import Job, Lane
from queue_manager.core.prompts import parse_prompt
from queue_manager.core.queueing import Claimed, NewJob, Submitted
from queue_manager.core.reports import stored_fields
from queue_manager.core.requirements import Capabilities, Requirements, hold_reason, requirements_of
from queue_manager.core.scheduling import positions
from queue_manager.core.workers import WorkerInfo, WorkerState
from queue_manager.service.hub import EventHub
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.settings import Settings
from queue_manager.store import ControlStore, EventLog, JobStore, ScriptRunner, WorkerStore
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import Clock

log = logging.getLogger(__name__)

# Workers whose capabilities count when deciding if a job can run at all: an offline GPU may
# come back; a draining one will not take new work.
_HOLD_STATES = (WorkerState.ONLINE, WorkerState.OFFLINE)


class QueueService:
    def __init__(self, settings: Settings, redis: Redis, clock: Clock = time.time) -> None:
        self.settings = settings
        self.redis = redis
        runner = ScriptRunner(redis, Keys(settings.key_prefix), clock)
        self.jobs = JobStore(runner)
        self.workers = WorkerStore(runner)
        self.control = ControlStore(runner)
        self.events = EventLog(redis, runner.keys)
        # The hub's blocking reads get a client of their own (no retries: the hub reconnects
        # by itself), so that stopping can close its connection: a cancelled blocking read was
        # seen to hang in redis-py 8 after a Redis restart.
        self._stream_redis = connect(str(settings.redis_url), retries=0)
        self.hub = EventHub(EventLog(self._stream_redis, runner.keys))
        self._keys = runner.keys
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    async def initialize(self) -> None:
        s = self.settings
        defaults = RoomControl(
            paused=False,
            mode=s.scheduling_mode,
            max_queued=s.max_queued_per_user,
            max_running=s.max_running_per_user,
            max_attempts=s.max_attempts,
        )
        await self.control.initialize(
            defaults, events_maxlen=s.events_maxlen, lease_seconds=s.lease_seconds
        )

    # -- participants -------------------------------------------------------------------

    async def submit(
        self,
        user: UserId,
        lane: Lane,
        raw_prompt: object,
        *,
        client_id: str | None = None,
        extra_data: Mapping[str, JsonValue] | None = None,
        job_id: JobId | None = None,
        targets: tuple[str, ...] = (),
    ) -> Submitted:
        """Queue a prompt for `user` (identity and lane come from authentication)."""
        prompt_json = json.dumps(raw_prompt, separators=(",", ":"))
        size = len(prompt_json.encode())
        if size > self.settings.max_prompt_bytes:
            raise PromptRejected(
                f"the prompt is {size} bytes; at most {self.settings.max_prompt_bytes} are allowed"
            )
        prompt = parse_prompt(raw_prompt, max_nodes=self.settings.max_prompt_nodes)
        req = requirements_of(prompt)
        job = NewJob(
            id=job_id or new_job_id(),
            user=user,
            lane=lane,
            prompt_json=prompt_json,
            requirements=req,
            client_id=client_id,
            extra_data=extra_data or {},
            targets=targets,
        )
        done = await self.jobs.submit(job)
        if not done.runnable and done.hold is None:
            # The rare path: say why no GPU can take it (the claim script skips it meanwhile).
            reason = await self._hold_reason(req)
            await self.jobs.set_holds({job.id: reason})
            done = Submitted(done.id, done.seq, runnable=False, hold=reason)
        log.info(
            "submitted job=%s user=%s lane=%s nodes=%d held=%s",
            job.id,
            user,
            lane,
            len(prompt),
            done.hold,
        )
        return done

    async def user_jobs(self, user: UserId) -> list[Job]:
        """All of a user's jobs (their queue and history), oldest first."""
        return await self.jobs.get_many(await self.jobs.user_job_ids(user))

    async def user_job(self, user: UserId, job_id: JobId) -> Job:
        """One of the user's jobs; someone else's is JobNotFound, exactly like a missing one."""
        job = await self.jobs.get(job_id)
        if job.user != user:
            raise JobNotFound(job_id)
        return job

    async def cancel_own(self, user: UserId, job_ids: list[JobId], reason: str) -> list[JobId]:
        """Cancel those of `job_ids` that are the user's and not finished; returns them."""
        done = []
        for job in await self.jobs.get_many(job_ids):
            if job.user == user and not job.status.is_final:
                with contextlib.suppress(JobNotFound, InvalidTransition):
                    await self.jobs.cancel(job.id, reason)
                    done.append(job.id)
        return done

    async def positions(self) -> dict[JobId, int]:
        """Every claimable job's true position under the policy (1 = next)."""
        return positions(await self.jobs.snapshot())

    # -- workers --------------------------------------------------------------------------

    async def claim(self, worker_id: WorkerId, wait: float) -> Claimed | None:
        """The worker's next job, waiting up to `wait` seconds for one to become claimable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        job = await self.jobs.claim(worker_id, wait=True)
        try:
            while job is None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    job = await self.jobs.unwait(worker_id)
                    break
                # Blocking pops stay under the client's socket timeout.
                got = await self.jobs.wait_inbox(worker_id, min(remaining, 10.0))
                if got is True:
                    job = await self.jobs.claim(worker_id, wait=True)
                elif got is not False:
                    job = got
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon_claim(worker_id, job))
            raise
        if job is not None:
            log.info(
                "claimed job=%s user=%s worker=%s attempt=%d waited=%.3fs",
                job.id,
                job.user,
                worker_id,
                job.attempts,
                job.claimed_at - job.created_at,
            )
        return job

    async def _abandon_claim(self, worker_id: WorkerId, job: Claimed | None) -> None:
        """The caller went away mid-claim: stop waiting, and requeue anything handed over."""
        handed = job or await self.jobs.unwait(worker_id)
        if handed is not None:
            await self.jobs.release(handed)
            log.info("released job=%s worker=%s reason=claim abandoned", handed.id, worker_id)

    async def register_worker(
        self, worker_id: WorkerId, caps: Capabilities, info: dict[str, JsonValue]
    ) -> None:
        requeued = await self.workers.register(worker_id, caps, info)
        log.info(
            "worker joined worker=%s nodes=%d models=%s requeued=%s",
            worker_id,
            len(caps.node_types),
            "unreported" if caps.models is None else len(caps.models),
            requeued,
        )
        await self.refresh_holds()

    async def report(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        attempt: int,
        kind: str,
        data: dict[str, JsonValue],
    ) -> None:
        """A phase or progress of a held job: announced, and kept on the job where a page
        needs it later (see `reports.stored_fields`)."""
        store = stored_fields(kind, data, self._clock())
        await self.jobs.report(job_id, worker_id, attempt, kind, data, store)

    async def set_worker_state(self, worker_id: WorkerId, state: str) -> None:
        requeued = await self.workers.set_state(worker_id, state)
        log.info("worker %s worker=%s requeued=%s", state, worker_id, requeued)
        await self.refresh_holds()

    async def refresh_holds(self) -> None:
        """Recompute, for every queued job, whether any known worker can run it and why not."""
        snap = await self.jobs.snapshot()
        job_ids = [j.id for lane in snap.lanes for u in lane.users for j in u.jobs]
        if not job_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(self._keys.job(job_id), "node_types", "models")
            rows = await pipe.execute()
        by_req: dict[Requirements, list[JobId]] = {}
        for job_id, (nodes, models) in zip(job_ids, rows, strict=True):
            req = Requirements(frozenset(json.loads(nodes)), frozenset(json.loads(models)))
            by_req.setdefault(req, []).append(job_id)
        workers = await self._known_workers()
        holds: dict[JobId, str | None] = {}
        for req, ids in by_req.items():
            reason = hold_reason(await self.workers.gaps(req, workers))
            holds.update(dict.fromkeys(ids, reason))
        await self.jobs.set_holds(holds)

    async def _hold_reason(self, req: Requirements) -> str | None:
        return hold_reason(await self.workers.gaps(req, await self._known_workers()))

    async def _known_workers(self) -> list[WorkerInfo]:
        return [w for w in await self.workers.all() if w.state in _HOLD_STATES]

    # -- background -------------------------------------------------------------------------

    async def run_reaper(self) -> None:
        """Requeue jobs of lost workers until cancelled; sleeps until the next lease deadline."""
        interval = self.settings.heartbeat_seconds
        while True:
            try:
                requeued, failed = await self.jobs.reap(self.settings.worker_timeout_seconds)
                for job_id in requeued:
                    log.info("requeued job=%s reason=lease expired", job_id)
                for job_id in failed:
                    log.info("failed job=%s reason=attempt limit reached", job_id)
                nxt = await self.jobs.next_lease_deadline()
            except Exception:  # one tick; the next one tries again
                reraise_if_cancelled()
                log.exception("reaper tick failed")
                nxt = None
            delay = interval if nxt is None else min(interval, max(nxt - self._clock(), 0.01))
            await asyncio.sleep(delay)

    def background_ok(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks) and self.hub.running

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[QueueService]:
        """Run the hub and the reaper for the duration of the block (the app's lifespan)."""
        await self.initialize()
        self._tasks = tasks = [
            asyncio.create_task(self.hub.run(), name="event-hub"),
            asyncio.create_task(self.run_reaper(), name="lease-reaper"),
        ]
        try:
            await self.hub.started.wait()
            yield self
        finally:
            self.hub.stop()
            await self._stream_redis.connection_pool.disconnect()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            await self._stream_redis.aclose()
