"""One slot of an endpoint: a worker in the queue that claims, heartbeats and runs one job at a
time on the endpoint, as a pull agent would.

How a run ends, whatever happens:

* done, or failed on ComfyUI: completed / failed, with ComfyUI's error;
* refused by ComfyUI (`POST /prompt` 400): failed with its node errors;
* cold start past its timeout, a prompt lost with its replica: back to the queue (the attempt
  counts), the endpoint marked failing with the reason;
* past the job timeout: failed, saying so, and taken off the endpoint;
* cancelled, requeued or the endpoint removed (the lease is lost): taken off the endpoint;
  whatever it still sends is discarded.

While its endpoint is failing (a job came back from it), a slot claims nothing: it asks the
endpoint a cheap question, backing off, until it answers. Else a dead endpoint would take job
after job, each waiting out its cold start timeout there and losing an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from queue_manager.comfy.remote import refusal_error
from queue_manager.core.endpoints import EndpointConfig, slot_worker
from queue_manager.core.errors import LeaseLost, WorkerNotFound, WorkerUnavailable
from queue_manager.core.queueing import Claimed
from queue_manager.core.requirements import Capabilities
from queue_manager.push.client import EndpointClient, EndpointDown, EndpointError, PromptRefused
from queue_manager.push.handle import JobHandle
from queue_manager.push.kinds import PROBES, EndpointRun, new_run
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.outcomes import ColdStartTimeout, OutputMissing, PromptLost
from queue_manager.service.queue import STORE_OUTAGES, QueueService
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.settings import Settings

log = logging.getLogger(__name__)

# Seconds between asks of a failing endpoint: doubling from the first to the most.
_PROBE_FIRST = 1.0
_PROBE_MOST = 30.0


class SlotRemoved(Exception):
    """The slot's endpoint was removed, or has fewer slots now: this slot stops."""


class Slot:
    def __init__(
        self,
        service: QueueService,
        settings: Settings,
        client: EndpointClient,
        monitor: EndpointMonitor,
        object_info: Mapping[str, Any],
        caps: Capabilities,
        number: int,
    ) -> None:
        self.service = service
        self.settings = settings
        self.client = client
        self.config: EndpointConfig = client.config
        self.monitor = monitor
        self.object_info = object_info
        self.caps = caps
        self.number = number
        self.worker = slot_worker(self.config.name, number)
        self.current: EndpointRun | None = None
        # A run the endpoint is done executing, its outputs still being copied beside `current`.
        self._finishing: dict[EndpointRun, asyncio.Task[None]] = {}
        self._offered: tuple[Capabilities, Mapping[str, Any]] | None = None
        self._lost = asyncio.Event()

    async def run(self) -> None:
        beats = asyncio.create_task(self._heartbeats(), name=f"beats {self.worker}")
        try:
            await self._register()
            while True:
                if self._offered is not None:  # the endpoint's own catalogue, learnt meanwhile
                    # Registering again gives back what the slot holds: a run still being
                    # copied ends first.
                    await self._finished()
                    self.caps, self.object_info = self._offered
                    self._offered = None
                    await self._register()
                await self._until_it_answers()
                claimed = await self._claim()
                if claimed is not None:
                    await self._run(claimed)
        except SlotRemoved:
            log.info("slot=%s stops: its endpoint was removed or shrunk", self.worker)
        finally:
            if self._finishing:  # stopping: each hands its job back (`_finish`)
                for task in self._finishing.values():
                    task.cancel()
                await asyncio.shield(asyncio.wait(set(self._finishing.values())))
            beats.cancel()
            await asyncio.wait({beats})
            with contextlib.suppress(*STORE_OUTAGES):
                await asyncio.shield(self.service.leave(self.worker))

    async def _finished(self) -> None:
        """Wait for the run whose outputs are still being copied (if any)."""
        while self._finishing:
            await asyncio.wait(set(self._finishing.values()))

    @property
    def offering(self) -> tuple[Capabilities, Mapping[str, Any]]:
        """What the slot offers from its next claim on."""
        return self._offered or (self.caps, self.object_info)

    def offer(self, caps: Capabilities, object_info: Mapping[str, Any]) -> None:
        """What the endpoint really has: offered from the slot's next claim on (a running job
        is not disturbed: registering again would give it back)."""
        self._offered = (caps, object_info)

    async def _register(self) -> None:
        """Join the queue (again), as long as the endpoint still has this slot."""
        if not await self._still_configured():
            raise SlotRemoved(self.worker)
        info: dict[str, JsonValue] = {
            "name": self.worker,
            "endpoint": self.config.name,
            "kind": self.config.kind.value,
            "url": self.config.url,
        }
        await self.service.register_worker(self.worker, self.caps, info)

    async def _until_it_answers(self) -> None:
        delay = _PROBE_FIRST
        while self.monitor.is_failing:
            try:
                await self.client.answers(PROBES[self.config.kind])
            except (EndpointDown, EndpointError) as exc:
                log.info("slot=%s: endpoint still failing (%s); asking again in %.0fs",
                         self.worker, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, _PROBE_MOST)
            else:
                await self.monitor.answered()

    async def _claim(self) -> Claimed | None:
        try:
            return await self.service.claim(self.worker, self.settings.claim_wait_seconds)
        except WorkerNotFound:  # removed by hand, or Redis lost it: join again (unless gone
            await self._register()  # with its endpoint: then the slot stops)
        except WorkerUnavailable:  # drained on the dashboard: claim again once resumed
            await asyncio.sleep(self.settings.heartbeat_seconds)
        except STORE_OUTAGES as exc:
            reraise_if_cancelled()
            log.warning("slot=%s cannot claim (%s); retrying", self.worker, exc)
            await asyncio.sleep(1.0)
        return None

    async def _still_configured(self) -> bool:
        configs = {c.name: c for c in await self.service.endpoints()}
        config = configs.get(self.config.name)
        return config is not None and self.number <= config.slots

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            for current in [self.current, *self._finishing]:
                await self._heartbeat(current)

    async def _heartbeat(self, current: EndpointRun | None) -> None:
        try:
            if current is None or not current.renews_lease:
                # Idle, or the job's lease is renewed by the agent running it (kind
                # `agent`): renewing it here would keep a dead agent's job forever.
                await self.service.heartbeat(self.worker, None, 0)
            else:
                await current.handle.heartbeat()
        except (LeaseLost, WorkerNotFound):
            # A finishing run learns it from its next report (and is taken off then).
            if current is not None and current is self.current:
                self._lost.set()
        except STORE_OUTAGES as exc:
            reraise_if_cancelled()
            log.warning("slot=%s heartbeat failed: %s", self.worker, exc)

    async def _run(self, claimed: Claimed) -> None:
        handle = JobHandle(self.service, self.worker, claimed)
        run = new_run(
            self.config.kind, handle, self.client, self.monitor, self.object_info, self.settings
        )
        self.current = run
        self._lost.clear()
        await self.monitor.job_started()
        log.info("slot=%s running job=%s user=%s attempt=%d", self.worker, claimed.id,
                 claimed.user, claimed.attempts)  # fmt: skip
        finishing = False
        try:
            finishing = await self._until_lost(run)
        finally:
            self.current = None
            if not finishing:
                await self.monitor.job_ended()

    async def _until_lost(self, run: EndpointRun) -> bool:
        """The run, stopped where the lease is lost; every ending mapped to the job's state.
        True when the endpoint is done executing it and the rest (copying its outputs, the
        outcome) goes on beside the next job (`_finish`)."""
        task = asyncio.create_task(run.run(), name=f"run {run.id}")
        lost = asyncio.create_task(self._lost.wait())
        executed = asyncio.create_task(run.executed.wait())
        try:
            await asyncio.wait({task, lost, executed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the dispatcher stops: the job goes back at once
            task.cancel()
            await asyncio.wait({task})
            await asyncio.shield(self._give_back(run, "the queue manager's dispatcher stopped"))
            raise
        finally:
            lost.cancel()
            executed.cancel()
        if not task.done() and run.executed.is_set() and not self._lost.is_set():
            await self._finished()  # one run copied at a time beside the next
            finish = asyncio.create_task(self._finish(run, task), name=f"finish {run.id}")
            self._finishing[run] = finish
            finish.add_done_callback(lambda _: self._finishing.pop(run, None))
            return True
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
            await self._taken_away(run)
            return False
        await self._ended(run, task)
        return False

    async def _finish(self, run: EndpointRun, task: asyncio.Task[None]) -> None:
        """The end of a run the endpoint is done executing: its outputs copied and its outcome
        reported while the slot's next job runs."""
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the dispatcher stops: the job goes back at once
            task.cancel()
            await asyncio.wait({task})
            await asyncio.shield(self._give_back(run, "the queue manager's dispatcher stopped"))
            raise
        try:
            await self._ended(run, task)
        finally:
            await self.monitor.job_ended()

    async def _ended(self, run: EndpointRun, task: asyncio.Task[None]) -> None:
        handle = run.handle
        try:
            task.result()
        except LeaseLost:
            await self._taken_away(run)
        except PromptRefused as exc:
            await self._settle(handle.fail(refusal_error(exc.body)))
        except ColdStartTimeout as exc:
            await self.monitor.failing(str(exc))
            await self._give_back(run, f"cold start: {exc}")
        except PromptLost as exc:
            await self._give_back(run, str(exc))
        except TimeoutError:
            await run.forget()
            seconds = self.config.job_timeout
            await self._settle(handle.fail({
                "type": "job_timeout",
                "message": f"no result within the job timeout ({seconds:.0f} s) on endpoint "
                f"{self.config.name}; taken off it",
            }))  # fmt: skip
        except (EndpointError, OutputMissing) as exc:
            await self.monitor.failing(str(exc))
            await self._give_back(run, str(exc))
        except STORE_OUTAGES as exc:  # the lease runs out and the queue hands the job on
            log.warning("job=%s: the queue's store failed (%s)", run.id, exc)
        except Exception as exc:  # one job's surprise must not stop the slot
            log.exception("job=%s failed in the dispatcher", run.id)
            await self._settle(handle.fail({
                "type": "dispatch_error",
                "message": f"the queue manager failed to run it on {self.config.name}: {exc!r}",
            }))  # fmt: skip

    async def _taken_away(self, run: EndpointRun) -> None:
        log.info("job=%s is no longer slot=%s's: taking it off the endpoint", run.id, self.worker)
        await run.forget()

    async def _give_back(self, run: EndpointRun, why: str) -> None:
        await run.forget()
        await self._settle(run.handle.release(why))

    async def _settle(self, outcome: Any) -> None:
        """Record an ending; the attempt having been taken away meanwhile changes nothing."""
        with contextlib.suppress(LeaseLost, *STORE_OUTAGES):
            await outcome
