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
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from queue_manager.comfy.remote import refusal_error
from queue_manager.core.endpoints import EndpointConfig, slot_worker
from queue_manager.core.errors import LeaseLost, WorkerNotFound, WorkerUnavailable
from queue_manager.core.queueing import Claimed, SignalAction
from queue_manager.core.requirements import Capabilities
from queue_manager.core.waiting import first_done
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


@dataclass(eq=False)
class _Hold:
    """One job the slot holds, from its claim until its outcome is recorded."""

    run: EndpointRun
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # the lease was lost
    back: asyncio.Event = field(default_factory=asyncio.Event)  # wanted back before it starts

    def waiting_on_endpoint(self) -> bool:
        """Posted, waiting or running: the endpoint is not done executing it."""
        return not self.run.executed.is_set()


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
        # The jobs held, in claim order (the endpoint's queue has them in this order): at most
        # two, as the queue records them (its `job` and `next`).
        self._holds: dict[str, _Hold] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()  # a held job ended or the endpoint finished executing it
        self._holding = asyncio.Event()  # set while a job is held (signals are read then)
        self._offered: tuple[Capabilities, Mapping[str, Any]] | None = None

    async def run(self) -> None:
        helpers = {asyncio.create_task(self._heartbeats(), name=f"beats {self.worker}")}
        if self.config.prefetch:
            helpers.add(asyncio.create_task(self._signals(), name=f"signals {self.worker}"))
        try:
            await self._register()
            while True:
                if self._offered is not None:  # the endpoint's own catalogue, learnt meanwhile
                    # Registering again gives back what the slot holds: its runs end first.
                    await self._finished()
                    self.caps, self.object_info = self._offered
                    self._offered = None
                    await self._register()
                await self._until_it_answers()
                await self._room_to_claim()
                claimed = await self._claim()
                if claimed is not None:
                    await self._start(claimed)
        except SlotRemoved:
            log.info("slot=%s stops: its endpoint was removed or shrunk", self.worker)
        finally:
            if self._runs:  # stopping: each hands its job back (`_supervise`)
                for task in self._runs:
                    task.cancel()
                await asyncio.shield(asyncio.wait(set(self._runs)))
            for helper in helpers:
                helper.cancel()
            await asyncio.wait(helpers)
            with contextlib.suppress(*STORE_OUTAGES):
                await asyncio.shield(self.service.leave(self.worker))

    async def _room_to_claim(self) -> None:
        """Until another job may be claimed: the endpoint executes at most `prefetch` jobs of
        ours besides the one it runs, and at most one earlier job's outputs are still being
        copied (the queue records two jobs per worker: the one its GPU runs, and the next)."""
        while True:
            self._freed.clear()
            on_endpoint = sum(1 for h in self._holds.values() if h.waiting_on_endpoint())
            if on_endpoint <= self.config.prefetch and len(self._holds) <= 1:
                return
            await self._freed.wait()

    async def _start(self, claimed: Claimed) -> None:
        """Run the job in a task of its own; return once it is in the endpoint's queue (or over),
        so the endpoint queues the slot's jobs in claim order."""
        handle = JobHandle(self.service, self.worker, claimed)
        run = new_run(
            self.config.kind, handle, self.client, self.monitor, self.object_info, self.settings
        )
        # Posted while another of ours is on the endpoint: it waits there, "next on GPU".
        run.behind = any(h.waiting_on_endpoint() for h in self._holds.values())
        hold = _Hold(run)
        self._holds[run.id] = hold
        self._holding.set()
        task = asyncio.create_task(self._supervise(hold), name=f"job {run.id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        log.info("slot=%s running job=%s user=%s attempt=%d%s", self.worker, claimed.id,
                 claimed.user, claimed.attempts, " (next)" if run.behind else "")  # fmt: skip
        await first_done(run.posted.wait(), run.executed.wait(), task)

    async def _finished(self) -> None:
        """Wait for every job the slot holds to end."""
        while self._runs:
            await asyncio.wait(set(self._runs))

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
            # with its endpoint: then the slot stops), once the jobs it held are off the
            # endpoint: the queue took them back, and claiming one again must not meet its
            # earlier run still there.
            for hold in self._holds.values():
                hold.lost.set()
            await self._finished()
            await self._register()
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
            holds = list(self._holds.values())
            if not any(h.run.renews_lease for h in holds):
                # Idle, or the job's lease is renewed by the agent running it (kind
                # `agent`): renewing it here would keep a dead agent's job forever.
                await self._heartbeat(None)
            for hold in holds:
                if hold.run.renews_lease:
                    await self._heartbeat(hold)

    async def _heartbeat(self, hold: _Hold | None) -> None:
        try:
            if hold is None:
                await self.service.heartbeat(self.worker, None, 0)
            else:
                await hold.run.handle.heartbeat()
        except (LeaseLost, WorkerNotFound):
            # A run the endpoint is done executing learns it from its next report (and is
            # taken off then).
            if hold is not None and hold.waiting_on_endpoint():
                hold.lost.set()
        except STORE_OUTAGES as exc:
            reraise_if_cancelled()
            log.warning("slot=%s heartbeat failed: %s", self.worker, exc)

    async def _signals(self) -> None:
        """What the queue says at once about the jobs held (prefetch only: a job handed early,
        waiting in the endpoint's queue, is wanted back for one the policy puts first; a
        cancel). Without prefetch the heartbeats notice a cancel."""
        while True:
            if not self._holds:
                self._holding.clear()
                await self._holding.wait()
            try:
                signals = await self.service.signals(self.worker, self.settings.claim_wait_seconds)
            except WorkerNotFound:  # joining again (`_claim`)
                await asyncio.sleep(self.settings.heartbeat_seconds)
                continue
            except STORE_OUTAGES as exc:
                reraise_if_cancelled()
                log.warning("slot=%s cannot read its signals (%s); retrying", self.worker, exc)
                await asyncio.sleep(1.0)
                continue
            for signal in signals:
                hold = self._holds.get(signal.job)
                if hold is None:
                    continue
                if signal.action is SignalAction.STOP:
                    hold.lost.set()
                elif not hold.run.started:
                    log.info("job=%s wanted back before it starts", signal.job)
                    hold.back.set()

    async def _supervise(self, hold: _Hold) -> None:
        """One held job's run, stopped where the lease is lost or the job is taken back;
        every ending mapped to the job's state. Once the endpoint is done executing it, the
        rest (copying its outputs, the outcome) goes on beside the slot's next job."""
        run = hold.run
        await self.monitor.job_started()
        task = asyncio.create_task(run.run(), name=f"run {run.id}")
        try:
            while True:
                await first_done(task, hold.lost.wait(), run.executed.wait(), hold.back.wait())
                if not hold.back.is_set() or task.done() or hold.lost.is_set():
                    break
                hold.back.clear()
                if await self._taken_back(hold, task):
                    return
            if not task.done() and (hold.lost.is_set() or not run.executed.is_set()):
                task.cancel()
                await asyncio.wait({task})
                await self._taken_away(run)
                return
            self._freed.set()  # done executing: the endpoint has room for the next
            await asyncio.wait({task})
            await self._ended(run, task)
        except asyncio.CancelledError:  # the dispatcher stops: the job goes back at once
            task.cancel()
            await asyncio.wait({task})
            await asyncio.shield(self._hand_back(run, "the queue manager's dispatcher stopped"))
            raise
        finally:
            if self._holds.get(run.id) is hold:
                del self._holds[run.id]
            self._freed.set()
            await self.monitor.job_ended()

    async def _taken_back(self, hold: _Hold, task: asyncio.Task[None]) -> bool:
        """A job waiting in the endpoint's queue, wanted back: taken out of that queue and
        returned to ours, its attempt not counted. False: it started (it runs on here), or
        it is no longer ours (cancelled meanwhile)."""
        run = hold.run
        await first_done(run.posted.wait(), run.executed.wait(), task, hold.lost.wait())
        if hold.lost.is_set():
            return False
        if task.done() or not await run.take_back():
            log.info("job=%s: too late to give back, it started", run.id)
            return False
        task.cancel()
        await asyncio.wait({task})
        if not await self._returned(run):
            await self._settle(run.handle.release("taken back"))
        log.info("job=%s given back before it started", run.id)
        return True

    async def _returned(self, run: EndpointRun) -> bool:
        """Give a job that never started on the endpoint back to the queue, uncounted."""
        with contextlib.suppress(LeaseLost, *STORE_OUTAGES):
            return await run.handle.give_back()
        return False

    async def _hand_back(self, run: EndpointRun, why: str) -> None:
        """Stopping: a job still waiting in the endpoint's queue goes back uncounted, any
        other the usual way (`_give_back`)."""
        if run.posted.is_set() and await run.take_back() and await self._returned(run):
            return
        await self._give_back(run, why)

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
