"""The worker agent: claims jobs from the queue manager and runs them on the local ComfyUI.

ComfyUI runs one prompt at a time; the agent keeps it busy. For each job: bring the
participant's input files over (renamed so that users cannot collide), submit with the job id
as `prompt_id`, follow `/ws` (relaying progress, coalesced), copy every output to the queue
manager as it is produced, then complete or fail with ComfyUI's own error. While a job runs,
the next one (`prefetch`) is claimed, staged and already waiting in ComfyUI's own queue, so
ComfyUI starts it the instant the current one ends; the last job's outputs are copied while
the next one runs. A job waiting there that the queue wants elsewhere (a cancel, or an
instructor's job that must go first) is deleted from ComfyUI's queue and given back before it
starts, its attempt not counted. Heartbeats renew every held job's lease; signals (a long
poll) and a 409 from the manager (job cancelled or given away) stop exactly that prompt.

If the local ComfyUI dies mid-job, the job is released back to the queue (not failed): the GPU
box is at fault, not the prompt, and the queue's attempt limit still stops a prompt that kills
every ComfyUI it meets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from queue_manager.comfy.frames import Preview, Text
from queue_manager.comfy.remote import (
    OutputRef,
    execution_error,
    file_inputs,
    history_outputs,
    interrupted_error,
    offer_of,
    refusal_error,
    with_renamed_inputs,
)
from queue_manager.contract.agent_api import TAKEN_PHASE
from queue_manager.contract.worker_api import (
    NEXT_ON_GPU_PHASE,
    OutputUpload,
    ReportType,
    StoredOutput,
)
from queue_manager.core.waiting import first_done
from worker.comfy_client import ComfyClient, EventStream
from worker.errors import (
    ComfyUIUnavailable,
    JobLost,
    ManagerUnavailable,
    PromptRefused,
    WorkerUnknown,
)
from worker.held import Held, Outputs
from worker.manager_client import Assignment, ManagerClient, SignalItem
from worker.reports import ProgressRelay, Reports
from worker.settings import WorkerSettings
from worker.spare_socket import JobSocket, SpareSocket, one_socket

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_CHUNK = 1 << 20


# How long a worker that is told to stop now spends handing its job back.
_GIVE_BACK_SECONDS = 5.0


class GivenBack(Exception):
    """A job handed early went back to the queue before it started (nothing more to report)."""


class Agent:
    def __init__(
        self, settings: WorkerSettings, manager: ManagerClient, comfy: ComfyClient
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.comfy = comfy
        self.draining = asyncio.Event()
        self._held: dict[str, Held] = {}  # in claim order: the GPU runs them in this order
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()  # a held job left the GPU or ended: room to claim
        self._holding = asyncio.Event()  # set while any job is held (signals are read then)
        self._comfy_down = False
        self._comfy_failed = asyncio.Event()  # set with _comfy_down: a pending claim ends
        self._not_claiming = asyncio.Event()  # no claim long poll is open
        self._not_claiming.set()
        self._stop_claim = asyncio.Event()  # stopping now: a pending claim ends
        self._unknown = False
        self._object_info: dict[str, Any] = {}
        self._spare: SpareSocket | None = None  # pull mode: a ComfyUI socket opened ahead
        # Jobs being handed back as we stop now: leaving waits for them (else a job would
        # read "worker left" rather than "given back", and lose the reason).
        self._handing_back: set[asyncio.Future[None]] = set()

    def drain(self) -> None:
        """Finish the jobs ComfyUI has started, claim no more (SIGTERM); a job waiting in its
        queue behind them goes back to the queue at once."""
        log.info("draining: finishing the current job, then stopping")
        self.draining.set()
        for held in self._waiting_behind():
            held.want_back()

    async def run(self) -> None:
        self._spare = SpareSocket(self.comfy)
        await self._register()
        self._spare.prime()
        helpers = {
            asyncio.create_task(self._heartbeats(), name="heartbeats"),
            asyncio.create_task(self._signals(), name="signals"),
        }
        stopped_now = False
        try:
            backoff = 0.5
            while not self.draining.is_set():
                if self._comfy_down or self._unknown:
                    # Claim nothing while our ComfyUI is away (every job would bounce); when
                    # it is back it may be another install: register what it has now. The
                    # same when the manager forgot us (removed, or its Redis lost us).
                    await self._settle()
                    await self._register()
                    self._comfy_down = self._unknown = False
                    self._comfy_failed.clear()
                if not await self._room_to_claim():
                    break
                if self._comfy_down or self._unknown:
                    continue  # register again first (above)
                try:
                    job = await self._claim_unless_draining()
                except WorkerUnknown:
                    self._unknown = True
                    continue
                except (ManagerUnavailable, ComfyUIUnavailable, JobLost) as exc:
                    # JobLost on a claim: the instructor drained this worker; ask again later.
                    log.warning("claim failed (%s); retrying in %.1fs", exc, backoff)
                    await self._sleep_unless_draining(backoff)
                    backoff = min(backoff * 2, self.settings.reconnect_max_seconds)
                    continue
                backoff = 0.5
                if job is not None and self._comfy_down:
                    # Claimed as our ComfyUI failed: back at once, the attempt not counted.
                    with contextlib.suppress(ManagerUnavailable, JobLost, WorkerUnknown):
                        await self.manager.give_back(job)
                elif job is not None:
                    held = self._start(job)
                    await held.posted.wait()  # ComfyUI's queue keeps our claim order
            await self._settle()  # draining: the jobs we hold run to their end
        except asyncio.CancelledError:
            stopped_now = True
            raise
        finally:
            if stopped_now:  # each job hands itself back (`_run_job`)
                for task in self._tasks:
                    task.cancel()
                if self._tasks:
                    await asyncio.shield(asyncio.wait(set(self._tasks)))
                # A job whose task was cancelled before it began never ran `_run_job`.
                for held in self._held.values():
                    self._handing_back.add(asyncio.ensure_future(self._give_back(held)))
                self._held.clear()
            for task in helpers:
                task.cancel()
            await asyncio.wait(helpers)
            await asyncio.shield(self._spare.close())
            await asyncio.shield(self._leave())

    def _start(self, job: Assignment) -> Held:
        held = Held(job)
        self._held[job.id] = held
        self._holding.set()
        task = asyncio.create_task(self._run_job(held), name=f"job {job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return held

    def _has_room(self) -> bool:
        """Another job may be claimed: ComfyUI holds at most `prefetch` jobs behind the
        running one, and the agent at most two (the queue records two per worker: the one
        its GPU runs and the next; a third would drop out of its record). So the next job is
        claimed once the last one's outputs are copied, while the current one runs."""
        on_comfy = sum(1 for h in self._held.values() if h.on_comfy())
        return on_comfy <= self.settings.prefetch and len(self._held) <= 1

    async def _room_to_claim(self) -> bool:
        """Wait until another job may be claimed, or our ComfyUI failed (the caller registers
        again); False when draining instead."""
        while not self._has_room() and not self._comfy_down:
            self._freed.clear()
            if self._has_room():
                break
            await first_done(self._freed.wait(), self.draining.wait(), self._comfy_failed.wait())
            if self.draining.is_set():
                return False
        return not self.draining.is_set()

    async def _settle(self) -> None:
        """Wait for every held job to end (reported, given back or released)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _waiting_behind(self) -> list[Held]:
        """Held jobs posted behind another of ours that ComfyUI has not started."""
        ahead, waiting = False, []
        for held in self._held.values():
            if held.on_comfy() and not held.started and ahead:
                waiting.append(held)
            ahead = ahead or held.on_comfy()
        return waiting

    async def _leave(self) -> None:
        """Tell the queue manager we are gone (a few seconds at most): the room shows it at once,
        and a claim answered just as we stopped (its answer lost) goes straight back."""
        try:
            async with asyncio.timeout(_GIVE_BACK_SECONDS):
                if self._handing_back:
                    await asyncio.wait(self._handing_back)
                await self.manager.leave()
            log.info("left the queue")
        except (TimeoutError, ManagerUnavailable, WorkerUnknown, JobLost) as exc:
            log.warning("could not tell the queue manager we left (%s)", exc or "timed out")

    async def _claim_unless_draining(self) -> Assignment | None:
        self._not_claiming.clear()
        claiming = asyncio.create_task(self._claim_or_stop())
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Stopped now (while a job runs, this is the claim of the next one): the claim
            # ends before the jobs we hold are handed back, or it could take one straight
            # back; anything it got goes back too.
            self._stop_claim.set()
            with contextlib.suppress(Exception):
                job = await claiming
                if job is not None:
                    async with asyncio.timeout(_GIVE_BACK_SECONDS):
                        await self.manager.give_back(job)
            raise
        finally:
            self._not_claiming.set()

    async def _claim_or_stop(self) -> Assignment | None:
        claim = asyncio.create_task(self.manager.claim())
        await first_done(
            claim, self.draining.wait(), self._comfy_failed.wait(), self._stop_claim.wait()
        )
        return await self._end_claim(claim)

    async def _end_claim(self, claim: asyncio.Task[Assignment | None]) -> Assignment | None:
        """What the claim got, once it ended. Stopping (or our ComfyUI failed), the long poll
        may have just been given a job whose answer is on its way: the manager is asked to
        answer now, and what it gave us is run (or given back)."""
        if not claim.done():
            gone = (TimeoutError, ManagerUnavailable, WorkerUnknown, JobLost, httpx.HTTPError)
            with contextlib.suppress(*gone):
                async with asyncio.timeout(_GIVE_BACK_SECONDS):
                    await self.manager.stop_waiting()
                    await asyncio.wait({claim})
        if claim.done():
            return claim.result()
        claim.cancel()  # the manager hands back anything it gave this dropped long poll
        await asyncio.wait({claim})
        return None

    async def _sleep_unless_draining(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.draining.wait()

    async def _register(self) -> None:
        backoff = 0.5
        while not self.draining.is_set():
            try:
                self._object_info = await self.comfy.object_info()
                stats = await self.comfy.system_stats()
                offer = offer_of(self._object_info)
                info: dict[str, Any] = {
                    "name": self.settings.name,
                    "comfyui_version": stats.get("system", {}).get("comfyui_version"),
                    "devices": stats.get("devices", []),
                }
                await self.manager.register(sorted(offer.node_types), sorted(offer.models), info)
                await self.manager.publish_object_info(self._object_info)
                log.info(
                    "registered: %d node types, %d models", len(offer.node_types), len(offer.models)
                )
                return
            except (ManagerUnavailable, ComfyUIUnavailable) as exc:
                log.warning("registration failed (%s); retrying in %.1fs", exc, backoff)
                await self._sleep_unless_draining(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_seconds)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            holding: list[Held | None] = [*self._held.values()] or [None]
            for held in holding:
                try:
                    await self.manager.heartbeat(held.job if held else None)
                except JobLost:
                    if held is not None and self._held.get(held.job.id) is held:
                        log.info("job=%s is no longer ours (cancelled or requeued)", held.job.id)
                        held.lose()
                except WorkerUnknown:
                    self._unknown = True
                except ManagerUnavailable as exc:
                    log.warning("heartbeat failed: %s", exc)

    async def _signals(self) -> None:
        """Act at once on what the queue manager says about the jobs we hold: a cancel stops
        one, a take-back returns one still waiting in ComfyUI's queue (heartbeats would notice
        a cancel only seconds later; a take-back, too late)."""
        backoff = 0.5
        while True:
            await self._holding.wait()
            try:
                items = await self.manager.signals()
            except (ManagerUnavailable, WorkerUnknown) as exc:
                log.debug("signals: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_seconds)
                continue
            except httpx.HTTPStatusError as exc:  # a queue manager older than signals
                log.info("the queue manager sends no signals (%s): heartbeats only", exc)
                return
            backoff = 0.5
            for item in items:
                self._on_signal(item)
            if not self._held:
                self._holding.clear()

    def _on_signal(self, item: SignalItem) -> None:
        held = self._held.get(item.job)
        if held is None:
            return
        if item.action == "stop":
            log.info("job=%s cancelled: stopping it", item.job)
            held.lose()
        elif not held.started:
            log.info("job=%s wanted back before it starts", item.job)
            held.want_back()

    # -- one job ----------------------------------------------------------------------------

    async def run_pushed(self, job: Assignment) -> None:
        """One job the queue manager pushed (serve mode; `self.manager` holds its lease token):
        said taken at once, then run as a claimed job, its lease renewed by our heartbeats.
        Nothing is registered or claimed."""
        beats = asyncio.create_task(self._heartbeats(), name=f"heartbeats {job.id}")
        held = Held(job)
        self._held[job.id] = held
        try:
            await self._tell(job, "job.phase", {"detail": TAKEN_PHASE})
            await self._run_job(held)
        finally:
            beats.cancel()
            await asyncio.wait({beats})

    def lose(self, job_id: str) -> bool:
        """The queue manager took the job away (cancelled, timed out, given to another): stop
        it without reporting anything more. True when this call stopped it (False: not a job
        we hold, or stopped already)."""
        held = self._held.get(job_id)
        if held is None or held.lost.is_set():
            return False
        held.lose()
        return True

    async def _run_job(self, held: Held) -> None:
        job = held.job
        started = time.monotonic()
        log.info("running job=%s user=%s attempt=%d", job.id, job.user, job.attempt)
        try:
            await self._execute(held)
        except GivenBack:
            log.info("job=%s given back before it started", job.id)
        except JobLost:
            log.info("job=%s lost; stopping it on ComfyUI", job.id)
            with contextlib.suppress(ComfyUIUnavailable):
                await self._stop_on_comfy(held)
        except asyncio.CancelledError:  # stopped now (a second SIGTERM, Ctrl-C)
            handing = asyncio.ensure_future(self._give_back(held))
            self._handing_back.add(handing)
            await asyncio.shield(handing)
            raise
        except PromptRefused as exc:
            await self._report_failure(job, refusal_error(exc.body, str(exc)))
        except ComfyUIUnavailable as exc:
            log.warning("ComfyUI failed during job=%s (%s): releasing it", job.id, exc)
            self._comfy_down = True
            self._comfy_failed.set()
            # Our pending claim ends first, or it would take this job straight back.
            await self._not_claiming.wait()
            with contextlib.suppress(ManagerUnavailable, JobLost, WorkerUnknown):
                await self.manager.release(job)
        except (ManagerUnavailable, WorkerUnknown) as exc:
            # The lease runs out and the queue gives the job to someone else.
            log.warning("queue manager lost during job=%s (%s)", job.id, exc)
        except Exception as exc:  # one job's surprise must not stop the worker
            log.exception("job=%s failed in the agent", job.id)
            await self._report_failure(
                job, {"type": "agent_error", "message": f"the worker agent failed: {exc!r}"}
            )
        finally:
            if held.recv is not None:
                held.recv.cancel()
            held.posted.set()
            held.ran.set()
            if self._held.get(job.id) is held:
                del self._held[job.id]
            self._freed.set()
            log.info("job=%s done in %.2fs", job.id, time.monotonic() - started)

    async def _stop_on_comfy(self, held: Held) -> None:
        """Stop a job of ours on ComfyUI: out of its queue if it waits there, else interrupted
        (only that prompt: never the one before it)."""
        if not held.posted.is_set() or held.ran.is_set():
            return
        if held.started or not await self.comfy.delete_queued(held.job.id):
            await self.comfy.interrupt(held.job.id)

    async def _give_back(self, held: Held) -> None:
        """Stop the job on ComfyUI and hand it back to the queue at once (rather than after
        its lease), as far as that works within a few seconds: one that never started goes
        back without its attempt counted."""
        job = held.job
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_GIVE_BACK_SECONDS):
                if not held.started and await self._returned(held):
                    return
                await self.comfy.interrupt(job.id)
                await self.manager.release(job)
                log.info("job=%s given back to the queue", job.id)

    async def _returned(self, held: Held) -> bool:
        """Take a job that has not started out of ComfyUI's queue and give it back, its
        attempt not counted. False: it started meanwhile (it is still ours)."""
        if held.posted.is_set() and not await self.comfy.delete_queued(held.job.id):
            return False
        if not await self.manager.give_back(held.job):
            # The queue saw it start, yet ComfyUI no longer has it: hand it back the usual
            # way (the attempt counts) rather than leave it to its lease.
            await self.manager.release(held.job)
        return True

    async def _report_failure(self, job: Assignment, error: dict[str, Any]) -> None:
        with contextlib.suppress(ManagerUnavailable, JobLost, WorkerUnknown):
            await self.manager.fail(job, error)

    async def _execute(self, held: Held) -> None:
        job = held.job
        if not self._object_info:  # serve mode: nothing was registered
            self._object_info = await self.comfy.object_info()
        prompt = await self._stage_inputs(job)
        outputs = Outputs()
        async with self._job_socket() as socket:
            stream, client_id = socket.stream, socket.client_id
            if held.lost.is_set():  # taken away while its inputs were staged
                raise JobLost(job.id)
            if held.back and await self._returned(held):
                raise GivenBack(job.id)
            held.behind = any(
                h is not held and h.posted.is_set() and h.on_comfy() for h in self._held.values()
            )
            await self.comfy.post_prompt(prompt, job.id, client_id, job.extra_data)
            held.posted.set()
            if held.behind:
                await self._tell(job, "job.phase", {"detail": NEXT_ON_GPU_PHASE})
            try:
                error = await self._follow(held, stream, outputs)
            except JobLost:
                # Stop the GPU at once, before anything else (closing the socket included).
                await self._stop_on_comfy(held)
                held.ran.set()
                raise
        # ComfyUI has moved on to our next job: this one's files are copied meanwhile. Its
        # history holds nothing more when `executed` announced every output node (ComfyUI
        # announces a cached one too): the job completes without asking it.
        if error is not None or not outputs.all_announced(job.prompt, self._object_info):
            await self._copy_unannounced(job, outputs)
        if error is not None:
            await self._persist("fail", lambda: self.manager.fail(job, error))
        else:
            await self._persist("complete", lambda: self.manager.complete(job))

    async def _copy_unannounced(self, job: Assignment, outputs: Outputs) -> None:
        """What the run's history entry holds that `executed` did not announce: files (copied)
        and UI output that is not a file (PreviewAny's text, ...; the queue manager keeps it
        from the report)."""
        entry = await self._history(job.id)
        refs, values = history_outputs(entry or {})
        for ref in refs:
            await self._copy_output(job, ref, outputs)
        for node_id, ui in values.items():
            if node_id not in outputs.announced:
                await self._tell(job, "job.executed", {"node": node_id, "output": ui})

    def _job_socket(self) -> contextlib.AbstractAsyncContextManager[JobSocket]:
        return self._spare.job_socket() if self._spare else one_socket(self.comfy)

    async def _persist(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """A call that must reach the queue manager (an output, the outcome): retried with
        backoff while the manager is away (a restart, a network blip), for a while."""
        deadline = time.monotonic() + self.settings.manager_retry_seconds
        backoff = 0.2
        while True:
            try:
                return await call()
            except ManagerUnavailable as exc:
                if time.monotonic() + backoff > deadline:
                    raise
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _tell(self, job: Assignment, kind: ReportType, data: dict[str, Any]) -> None:
        """A report that may be lost (a phase): the manager being away must not stop the run."""
        try:
            await self.manager.report(job, kind, data)
        except ManagerUnavailable as exc:
            log.debug("report %s lost: %s", kind, exc)

    async def _follow(
        self,
        held: Held,
        stream: EventStream,
        outputs: Outputs,
    ) -> dict[str, Any] | None:
        """Relay the run until ComfyUI is done with it; returns ComfyUI's error (None on
        success). Until it starts, a take-back returns it (GivenBack)."""
        reports = Reports(self.manager, held, self.settings.report_batch)
        try:
            return await self._relay_run(held, stream, outputs, reports)
        finally:
            await reports.close()

    async def _relay_run(
        self, held: Held, stream: EventStream, outputs: Outputs, reports: Reports
    ) -> dict[str, Any] | None:
        job = held.job
        relay = ProgressRelay(reports, self.settings.progress_interval_seconds)
        timeout = self.settings.job_timeout_seconds
        deadline = time.monotonic() + (2 * timeout if held.behind else timeout)
        error: dict[str, Any] | None = None
        while True:
            if held.lost.is_set():
                raise JobLost(job.id)
            if held.back and not held.started:
                held.wake.clear()
                if await self._returned(held):
                    raise GivenBack(job.id)
                held.back = False  # too late: it runs here
            message = await self._next_message(held, stream, deadline)
            if message is None:
                continue
            if isinstance(message, Preview):
                relay.offer_preview(message)
                continue
            if isinstance(message, Text):
                continue
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") not in (None, job.id):
                continue
            if kind == "execution_start":
                held.started = True
                deadline = time.monotonic() + timeout
                reports.tell("job.started", {})
            elif kind == "executing" and data.get("node") is not None:
                held.started = True
                relay.flush()
                reports.tell("job.executing", {"node": data["node"]})
            elif kind == "progress":
                relay.offer(
                    {"value": data.get("value"), "max": data.get("max"), "node": data.get("node")}
                )
            elif kind == "executed":
                relay.flush()
                # Copied while the reports before it are still on their way; announced after them.
                await self._copy_executed(job, data, outputs, reports)
            elif kind == "execution_error":
                error = execution_error(data)
            elif kind == "execution_interrupted":
                error = interrupted_error(data)
            elif kind == "executing" and data.get("node") is None:
                held.ran.set()
                self._freed.set()
                relay.flush()
                await reports.settled()
                return error

    async def _next_message(self, held: Held, stream: EventStream, deadline: float) -> Any:
        """The job's next ComfyUI message, or None: at least every heartbeat (to notice a
        lost job) and at once when a signal wakes it. A read cut short stays pending for the
        next call, so no message is ever dropped."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await self.comfy.interrupt(held.job.id)
            raise ComfyUIUnavailable(f"job {held.job.id} ran past the job timeout")
        if held.recv is None:
            held.recv = asyncio.ensure_future(stream.next())
        woken = asyncio.ensure_future(held.wake.wait())
        try:
            await asyncio.wait(
                {held.recv, woken},
                timeout=min(remaining, self.settings.heartbeat_seconds),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            woken.cancel()
        if not held.recv.done():
            return None
        recv, held.recv = held.recv, None
        return recv.result()

    async def _copy_executed(
        self,
        job: Assignment,
        data: dict[str, Any],
        outputs: Outputs,
        reports: Reports,
    ) -> None:
        node_id = str(data.get("node"))
        refs, other = history_outputs({"outputs": {node_id: data.get("output") or {}}})
        for ref in refs:
            await self._copy_output(job, ref, outputs)
        outputs.announced.add(node_id)
        # The queue manager announces the files as it stored them; the UI values go along.
        reports.tell("job.executed", {"node": node_id, "output": other.get(node_id, {})})

    async def _copy_output(
        self,
        job: Assignment,
        ref: OutputRef,
        outputs: Outputs,
    ) -> None:
        if not outputs.first_time(ref):
            return
        upload = OutputUpload(
            attempt=job.attempt,
            filename=ref.filename,
            subfolder=ref.subfolder,
            type="temp" if ref.type == "temp" else "output",
            node_id=ref.node_id,
            media=ref.media,
        )

        async def copy() -> StoredOutput:  # a retry streams the file from ComfyUI again
            async with self.comfy.view(ref) as response:
                return await self.manager.upload_output(job, upload, response.aiter_raw(_CHUNK))

        await self._persist(f"output {ref.filename}", copy)

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        for _ in range(50):  # the entry lands right after the last message
            entry = await self.comfy.history(prompt_id)
            if entry:
                return entry
            await asyncio.sleep(0.05)
        return None

    async def _stage_inputs(self, job: Assignment) -> dict[str, Any]:
        """Bring the job's input files to this ComfyUI under names no other user can collide
        with, and point the prompt at them."""
        renames: dict[tuple[str, str], str] = {}
        scratch = self.settings.work_dir / job.id
        for ref in file_inputs(job.prompt, self._object_info):
            local = scratch / uuid.uuid4().hex
            await self._download(job, ref.kind, ref.name, local)
            remote = f"cw_{job.user}_{job.id[:8]}_{Path(ref.name).name}"
            renames[(ref.node_id, ref.input_name)] = await self.comfy.upload_input(local, remote)
            await asyncio.to_thread(local.unlink)
        return with_renamed_inputs(job.prompt, renames)

    async def _download(self, job: Assignment, kind: str, name: str, target: Path) -> None:
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        async with self.manager.download_input(job, kind, name) as response:
            if response.status_code == 404:
                raise PromptRefused(
                    {"error": {"type": "missing_input", "message": f"input file {name} not found"}}
                )
            if response.status_code == 409:
                raise JobLost(job.id)
            response.raise_for_status()
            with target.open("wb") as fh:
                async for chunk in response.aiter_raw(_CHUNK):
                    await asyncio.to_thread(fh.write, chunk)
