"""One job on an `agent` endpoint: our agent inside a serverless image, next to its ComfyUI
(`comfy-workshop worker --serve PORT`; its API in `contract.agent_api`).

1. The job is pushed (`POST /jobs`) with a lease token minted for this attempt. A refused or
   timed-out push while the endpoint is cold, or a busy replica (409), is retried with backoff
   up to the cold-start timeout, and the participant reads "GPU starting". A push whose answer
   was lost is not sent again blindly: an agent that took it says so at once (`TAKEN_PHASE`),
   and the endpoint is asked (`GET /jobs/{id}`).
2. From then on the agent runs it as a pull job and reports progress, outputs and the outcome
   over the worker API itself. Its heartbeats renew the lease, so the slot stops renewing it
   (`renews_lease`): a dead agent's job is requeued when its lease runs out.
3. The run waits until the job is final, or no longer this slot's attempt (LeaseLost: the slot
   takes it off the endpoint), up to the endpoint's job timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from queue_manager.contract.agent_api import TAKEN_PHASE, PushedJob
from queue_manager.contract.worker_api import Assignment
from queue_manager.core.errors import JobNotFound, LeaseLost
from queue_manager.core.jobs import Job, JobStatus
from queue_manager.push.client import (
    DeliveryUnknown,
    EndpointBusy,
    EndpointClient,
    EndpointDown,
    EndpointError,
)
from queue_manager.push.handle import JobHandle
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.outcomes import ColdStartTimeout
from queue_manager.push.run_base import RunBase
from queue_manager.service.queue import STORE_OUTAGES
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.settings import Settings

log = logging.getLogger(__name__)

# After a lost answer: how often, and how far apart, we look for an agent having taken it.
_LOOKUPS = 10
_LOOKUP_PAUSE = 0.3
# A lease token outlives the run's own limits by this much (the last outputs' uploads).
_TOKEN_MARGIN = 900.0
_SETTLED = (JobStatus.COMPLETED, JobStatus.FAILED)


class AgentRun(RunBase):
    def __init__(
        self,
        handle: JobHandle,
        client: EndpointClient,
        monitor: EndpointMonitor,
        settings: Settings,
    ) -> None:
        super().__init__(handle, client, monitor, settings)
        # True until an agent has taken the job; then its heartbeats renew the lease.
        self.renews_lease = True

    async def run(self) -> None:
        await self._push(self._pushed())
        self.renews_lease = False
        log.info("job=%s taken by an agent of endpoint=%s", self.id, self.config.name)
        async with asyncio.timeout(self.config.job_timeout):
            await self._until_settled()

    async def forget(self) -> None:
        """Stop it on the agent (cancelled, timed out, given back); through a load balancer
        each ask may reach another replica, and only the one running it acts."""
        for _ in range(3):
            await self.client.cancel_pushed(self.id)

    def _pushed(self) -> PushedJob:
        job = self.handle.job
        ttl = self.config.cold_start_timeout + self.config.job_timeout + _TOKEN_MARGIN
        token = self.handle.service.lease_token(self.handle.worker, job.id, job.attempts, ttl)
        assignment = Assignment(
            id=job.id, attempt=job.attempts, user=job.user, lane=job.lane,
            client_id=job.client_id, prompt=self.handle.prompt,
            extra_data=self.handle.extra_data,
        )  # fmt: skip
        return PushedJob(assignment=assignment, token=token)

    # -- 1. the push --------------------------------------------------------------------------

    async def _push(self, job: PushedJob) -> None:
        """Pushed until an agent takes it, or ColdStartTimeout."""
        started = time.monotonic()
        backoff = 0.5
        while True:
            reason = await self._push_once(job)
            if reason is None:
                return
            if time.monotonic() - started >= self.config.cold_start_timeout:
                raise ColdStartTimeout(
                    f"no agent of endpoint {self.config.name} took the job within "
                    f"{self.config.cold_start_timeout:.0f} s ({reason})"
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 1.5, 5.0)

    async def _push_once(self, job: PushedJob) -> str | None:
        """One push: None when taken, else why not (worth another try)."""
        say = asyncio.create_task(self.held_after(self.monitor.now()))
        try:
            await self.client.push_job(job)
        except DeliveryUnknown as exc:
            if await self._taken():
                log.info("job=%s: the lost push had arrived; not sent again", self.id)
                return None
            return await self._down(exc)
        except EndpointDown as exc:
            return await self._down(exc)
        except EndpointBusy as exc:
            await self.monitor.answered()
            return str(exc)
        finally:
            say.cancel()
        await self.monitor.answered()
        return None

    async def _down(self, exc: EndpointDown) -> str:
        await self.say_starting()
        await self.monitor.down(str(exc))
        return str(exc)

    async def _taken(self) -> bool:
        """Whether an agent has the job (or it is no longer ours to push)."""
        for _ in range(_LOOKUPS):
            job = await self._job()
            if job is not None and (not self._holds(job) or _shows_taken(job)):
                return True
            with contextlib.suppress(EndpointDown, EndpointError):
                state = await self.client.pushed_job(self.id)
                if state is not None and state.attempt == self.handle.attempt:
                    return True
            await asyncio.sleep(_LOOKUP_PAUSE)
        return False

    # -- 2. waiting ---------------------------------------------------------------------------

    async def _until_settled(self) -> None:
        """Until the agent finished the job, or the job is no longer this attempt's."""
        while True:
            job = await self._job()
            if job is not None and job.status in _SETTLED:
                return
            if job is not None and not self._holds(job):
                raise LeaseLost(self.handle.job.id, self.handle.worker, job.status.value)
            await asyncio.sleep(self.settings.endpoint_poll_seconds)

    async def _job(self) -> Job | None:
        """The job now (None while the queue's store is away: ask again)."""
        try:
            job = await self.handle.service.job(self.handle.job.id)
        except JobNotFound:  # deleted meanwhile: certainly not ours any more
            raise LeaseLost(self.handle.job.id, self.handle.worker, "deleted") from None
        except STORE_OUTAGES as exc:
            reraise_if_cancelled()
            log.warning("job=%s cannot be read (%s); asking again", self.id, exc)
            return None
        reraise_if_cancelled()  # a Redis call was seen to swallow a cancellation
        return job

    def _holds(self, job: Job) -> bool:
        return (
            job.status is JobStatus.RUNNING
            and job.worker == self.handle.worker
            and job.attempts == self.handle.attempt
        )


def _shows_taken(job: Job) -> bool:
    return job.started_at is not None or job.phase == TAKEN_PHASE
