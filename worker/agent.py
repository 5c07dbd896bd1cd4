"""The worker agent: claims jobs from the queue manager and runs them on the local ComfyUI.

One job at a time per ComfyUI. For each job: bring the participant's input files over (renamed
so that users cannot collide), submit with the job id as `prompt_id`, follow `/ws` (relaying
progress, coalesced), copy every output to the queue manager as it is produced, then complete
or fail with ComfyUI's own error. Heartbeats renew the lease meanwhile; a 409 from the manager
(job cancelled or given away) interrupts exactly that prompt.

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
from dataclasses import dataclass, field
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
from queue_manager.contract.worker_api import OutputUpload, ReportType, StoredOutput
from worker.comfy_client import ComfyClient, EventStream
from worker.errors import (
    ComfyUIUnavailable,
    JobLost,
    ManagerUnavailable,
    PromptRefused,
    WorkerUnknown,
)
from worker.manager_client import Assignment, ManagerClient
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_CHUNK = 1 << 20


# How long a worker that is told to stop now spends handing its job back.
_GIVE_BACK_SECONDS = 5.0


class Agent:
    def __init__(
        self, settings: WorkerSettings, manager: ManagerClient, comfy: ComfyClient
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.comfy = comfy
        self.draining = asyncio.Event()
        self.current: Assignment | None = None
        self._lost = asyncio.Event()
        self._comfy_down = False
        self._unknown = False
        self._object_info: dict[str, Any] = {}
        # A job being handed back as we stop now: leaving waits for it (else the job would
        # read "worker left" rather than "given back", and lose the reason).
        self._handing_back: asyncio.Future[None] | None = None

    def drain(self) -> None:
        """Finish the current job, claim no more (SIGTERM)."""
        log.info("draining: finishing the current job, then stopping")
        self.draining.set()

    async def run(self) -> None:
        await self._register()
        beats = asyncio.create_task(self._heartbeats(), name="heartbeats")
        try:
            backoff = 0.5
            while not self.draining.is_set():
                if self._comfy_down or self._unknown:
                    # Claim nothing while our ComfyUI is away (every job would bounce); when
                    # it is back it may be another install: register what it has now. The
                    # same when the manager forgot us (removed, or its Redis lost us).
                    await self._register()
                    self._comfy_down = self._unknown = False
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
                if job is not None:
                    await self._run_job(job)
        finally:
            beats.cancel()
            await asyncio.wait({beats})
            await asyncio.shield(self._leave())

    async def _leave(self) -> None:
        """Tell the queue manager we are gone (a few seconds at most): the room shows it at once,
        and a claim answered just as we stopped (its answer lost) goes straight back."""
        try:
            async with asyncio.timeout(_GIVE_BACK_SECONDS):
                if self._handing_back is not None:
                    await asyncio.wait({self._handing_back})
                await self.manager.leave()
            log.info("left the queue")
        except (TimeoutError, ManagerUnavailable, WorkerUnknown, JobLost) as exc:
            log.warning("could not tell the queue manager we left (%s)", exc or "timed out")

    async def _claim_unless_draining(self) -> Assignment | None:
        claim = asyncio.create_task(self.manager.claim())
        drained = asyncio.create_task(self.draining.wait())
        await asyncio.wait({claim, drained}, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if not claim.done():
            # Stopping: the long poll may have just been given a job whose answer is on its
            # way. Ask the manager to answer now, and run what it gave us before we leave.
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
            job = self.current
            try:
                await self.manager.heartbeat(job)
            except JobLost:
                if job is not None and job is self.current:
                    log.info("job=%s is no longer ours (cancelled or requeued)", job.id)
                    self._lost.set()
            except WorkerUnknown:
                self._unknown = True
            except ManagerUnavailable as exc:
                log.warning("heartbeat failed: %s", exc)

    # -- one job ----------------------------------------------------------------------------

    async def run_pushed(self, job: Assignment) -> None:
        """One job the queue manager pushed (serve mode; `self.manager` holds its lease token):
        said taken at once, then run as a claimed job, its lease renewed by our heartbeats.
        Nothing is registered or claimed."""
        beats = asyncio.create_task(self._heartbeats(), name=f"heartbeats {job.id}")
        try:
            await self._tell(job, "job.phase", {"detail": TAKEN_PHASE})
            await self._run_job(job)
        finally:
            beats.cancel()
            await asyncio.wait({beats})

    def lose(self, job_id: str) -> bool:
        """The queue manager took the job away (cancelled, timed out, given to another): stop
        it without reporting anything more. True when this call stopped it (False: not the job
        running, or stopped already)."""
        if self.current is None or self.current.id != job_id or self._lost.is_set():
            return False
        self._lost.set()
        return True

    async def _run_job(self, job: Assignment) -> None:
        self.current = job
        self._lost.clear()
        started = time.monotonic()
        log.info("running job=%s user=%s attempt=%d", job.id, job.user, job.attempt)
        try:
            await self._execute(job)
        except JobLost:
            log.info("job=%s lost; interrupting it on ComfyUI", job.id)
            await self.comfy.interrupt(job.id)
        except asyncio.CancelledError:  # stopped now (a second SIGTERM, Ctrl-C)
            self._handing_back = asyncio.ensure_future(self._give_back(job))
            await asyncio.shield(self._handing_back)
            raise
        except PromptRefused as exc:
            await self._report_failure(job, refusal_error(exc.body, str(exc)))
        except ComfyUIUnavailable as exc:
            log.warning("ComfyUI failed during job=%s (%s): releasing it", job.id, exc)
            self._comfy_down = True
            with contextlib.suppress(ManagerUnavailable, JobLost):
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
            self.current = None
            log.info("job=%s done in %.2fs", job.id, time.monotonic() - started)

    async def _give_back(self, job: Assignment) -> None:
        """Stop the job on ComfyUI and hand it back to the queue at once (rather than after
        its lease), as far as that works within a few seconds."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_GIVE_BACK_SECONDS):
                await self.comfy.interrupt(job.id)
                await self.manager.release(job)
                log.info("job=%s given back to the queue", job.id)

    async def _report_failure(self, job: Assignment, error: dict[str, Any]) -> None:
        with contextlib.suppress(ManagerUnavailable, JobLost, WorkerUnknown):
            await self.manager.fail(job, error)

    async def _execute(self, job: Assignment) -> None:
        if not self._object_info:  # serve mode: nothing was registered
            self._object_info = await self.comfy.object_info()
        prompt = await self._stage_inputs(job)
        client_id = f"cw-agent-{uuid.uuid4().hex[:12]}"
        outputs = _Outputs()
        async with self.comfy.events(client_id) as stream:
            await stream.next()  # the first status frame (sid)
            if self._lost.is_set():  # taken away while its inputs were staged
                raise JobLost(job.id)
            await self.comfy.post_prompt(prompt, job.id, client_id, job.extra_data)
            try:
                error = await self._follow(job, stream, outputs)
            except JobLost:
                # Stop the GPU at once, before anything else (closing the socket included).
                await self.comfy.interrupt(job.id)
                raise
        entry = await self._history(job.id)
        refs, values = history_outputs(entry or {})
        for ref in refs:  # anything `executed` did not announce
            await self._copy_output(job, ref, outputs)
        # UI output that is not a file (PreviewAny's text, ...) of nodes `executed` did not
        # announce: the queue manager keeps it from the report.
        for node_id, ui in values.items():
            if node_id not in outputs.announced:
                await self._tell(job, "job.executed", {"node": node_id, "output": ui})
        if error is not None:
            await self._persist("fail", lambda: self.manager.fail(job, error))
        else:
            await self._persist("complete", lambda: self.manager.complete(job))

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
        job: Assignment,
        stream: EventStream,
        outputs: _Outputs,
    ) -> dict[str, Any] | None:
        """Relay the run until it ends; returns ComfyUI's error (None on success)."""
        relay = _ProgressRelay(self.manager, job, self.settings.progress_interval_seconds)
        deadline = time.monotonic() + self.settings.job_timeout_seconds
        error: dict[str, Any] | None = None
        while True:
            if self._lost.is_set():
                raise JobLost(job.id)
            message = await self._next_message(stream, deadline, job)
            if message is None:
                continue
            if isinstance(message, Preview):
                await relay.offer_preview(message)
                continue
            if isinstance(message, Text):
                continue
            kind, data = message.get("type"), message.get("data") or {}
            if data.get("prompt_id") not in (None, job.id):
                continue
            if kind == "execution_start":
                await self._tell(job, "job.started", {})
            elif kind == "executing" and data.get("node") is not None:
                await relay.flush()
                await self._tell(job, "job.executing", {"node": data["node"]})
            elif kind == "progress":
                await relay.offer(
                    {"value": data.get("value"), "max": data.get("max"), "node": data.get("node")}
                )
            elif kind == "executed":
                await self._copy_executed(job, data, outputs)
            elif kind == "execution_error":
                error = execution_error(data)
            elif kind == "execution_interrupted":
                error = interrupted_error(data)
            elif kind == "executing" and data.get("node") is None:
                await relay.flush()
                return error

    async def _next_message(self, stream: EventStream, deadline: float, job: Assignment) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await self.comfy.interrupt(job.id)
            raise ComfyUIUnavailable(f"job {job.id} ran past the job timeout")
        try:
            # Wake up at least every heartbeat to notice a cancelled job. (`asyncio.timeout`,
            # not `wait_for`: on Python 3.11 wait_for can swallow a cancellation that lands as
            # the message arrives, and a stop-now would then be lost.)
            async with asyncio.timeout(min(remaining, self.settings.heartbeat_seconds)):
                return await stream.next()
        except TimeoutError:
            return None

    async def _copy_executed(
        self,
        job: Assignment,
        data: dict[str, Any],
        outputs: _Outputs,
    ) -> None:
        node_id = str(data.get("node"))
        refs, other = history_outputs({"outputs": {node_id: data.get("output") or {}}})
        for ref in refs:
            await self._copy_output(job, ref, outputs)
        outputs.announced.add(node_id)
        # The queue manager announces the files as it stored them; the UI values go along.
        await self._tell(job, "job.executed", {"node": node_id, "output": other.get(node_id, {})})

    async def _copy_output(
        self,
        job: Assignment,
        ref: OutputRef,
        outputs: _Outputs,
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


@dataclass
class _Outputs:
    """One job's copied outputs: which files are done (an output announced by `executed` is
    listed again by the history) and which nodes were announced."""

    announced: set[str] = field(default_factory=set)
    _copied: set[tuple[str, str, str]] = field(default_factory=set)

    def first_time(self, ref: OutputRef) -> bool:
        key = (ref.filename, ref.subfolder, ref.type)
        if key in self._copied:
            return False
        self._copied.add(key)
        return True


class _ProgressRelay:
    """At most one progress report and one preview per interval; the latest wins (a fast
    sampler must not flood the queue manager), and the last progress is always sent."""

    def __init__(self, manager: ManagerClient, job: Assignment, interval: float) -> None:
        self._manager, self._job, self._interval = manager, job, interval
        self._sent_at = 0.0
        self._preview_at = 0.0
        self._pending: dict[str, Any] | None = None

    async def offer_preview(self, preview: Preview) -> None:
        # Previews are only a glimpse: one dropped in favour of a newer one loses nothing.
        if time.monotonic() - self._preview_at >= self._interval:
            self._preview_at = time.monotonic()
            with contextlib.suppress(ManagerUnavailable):
                await self._manager.preview(self._job, preview.image, preview.mime)

    async def offer(self, data: dict[str, Any]) -> None:
        self._pending = data
        if time.monotonic() - self._sent_at >= self._interval:
            await self.flush()

    async def flush(self) -> None:
        if self._pending is not None:
            data, self._pending = self._pending, None
            self._sent_at = time.monotonic()
            with contextlib.suppress(ManagerUnavailable):  # progress may be lost, never the run
                await self._manager.report(self._job, "job.progress", data)
