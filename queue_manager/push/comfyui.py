"""One job on a `comfyui` endpoint: a ComfyUI URL, or serverless replicas behind a load balancer.

1. Inputs reach the endpoint under collision-free names: uploaded (`/upload/image`), or
   written into the folder every replica reads as its input folder.
2. The prompt goes in with our job id as `prompt_id` (a later attempt's derived from it,
   `prompt_id_of`), its save nodes writing under a folder of the job's own. A refused or
   timed-out call while the endpoint is cold is retried with backoff up to the cold-start
   timeout, and the participant reads "GPU starting"; a `POST` whose answer was lost is looked
   up before it is sent again (ComfyUI takes a duplicate id).
3. Then two channels: `/ws` relays progress and previews where it reached the replica that
   runs the job, and `/history/{id}` is polled as the source of truth. `{}` means "not on this
   replica": ask again. A prompt no replica has listed for `endpoint_lost_seconds` was lost
   with its replica, and the job goes back to the queue.
4. Outputs are fetched through `/view` (retried where a replica lacks the file) or read from
   the shared output mount, and stored as a pull worker's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiofiles
from pydantic import JsonValue

from queue_manager.comfy.frames import Preview, parse_frame
from queue_manager.comfy.remote import (
    OutputRef,
    execution_error,
    file_inputs,
    history_error,
    history_finished,
    history_outputs,
    interrupted_error,
    outputs_from_folder,
    save_prefixes,
    with_output_folder,
    with_renamed_inputs,
    without_folder,
)
from queue_manager.contract.worker_api import NEXT_ON_GPU_PHASE
from queue_manager.core.errors import LeaseLost
from queue_manager.core.events import EventType
from queue_manager.push.client import (
    DeliveryUnknown,
    EndpointClient,
    EndpointDown,
    EndpointError,
    NotOnThisReplica,
)
from queue_manager.push.handle import JobHandle
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.outcomes import ColdStartTimeout, OutputMissing, PromptLost
from queue_manager.push.run_base import RunBase
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.settings import Settings
from queue_manager.storage.static_files import file_inside

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Looking a prompt up (a lost `POST` answer): this many asks, spread over the replicas.
_LOOKUPS = 6
# A socket that saw the run end waits this long for a history entry before it is believed.
_SOCKET_GRACE = 10.0
# A prompt is lost only after this many asks that did not find it (besides the time): answers
# that did not know it, or no answer at all. An endpoint that answers nothing for
# `endpoint_lost_seconds` (its one machine SIGKILLed, gone) has lost the prompt as surely as a
# replica that restarted empty; waiting for it held the job until the job timeout, then failed
# it. Should it come back still running the prompt, the run there is forgotten or wasted, never
# stored: only the attempt holding the lease stores outputs.
_LOST_AFTER = 5
# How many times in a row a prompt is taken out of the queue, then interrupted (`forget`).
_FORGET_ASKS = 4
# How often the history is asked for once the socket saw the run end.
_AFTER_THE_END = 0.05
# `/view` asks before an output is given up as on no replica.
_VIEW_TRIES = 12
_PROGRESS_EVERY = 0.25
# How long the end of a run waits for its socket relay to stop.
_SOCKET_CLOSE = 5.0
# How long a submission waits for the socket to open (a warm endpoint's opens at once).
_SOCKET_FIRST = 2.0


class ComfyUIRun(RunBase):
    def __init__(
        self,
        handle: JobHandle,
        client: EndpointClient,
        monitor: EndpointMonitor,
        object_info: Mapping[str, Any],
        settings: Settings,
    ) -> None:
        super().__init__(handle, client, monitor, settings)
        self.object_info = object_info
        self.folder = f"cw-{handle.job.id}-{handle.attempt}"
        self.prompt_id = prompt_id_of(handle.job.id, handle.attempt)
        self._last_seen = time.monotonic()
        self._unknown = 0  # answers since then that did not know the prompt (errors aside)
        self._socket_end: tuple[float, dict[str, Any]] | None = None
        self._socket_outputs: dict[str, Any] = {}
        self._progress_at = 0.0
        self._socket_open = asyncio.Event()
        self._ended = asyncio.Event()  # the socket saw the run end: ask the history now
        self._deadline: asyncio.Timeout | None = None  # the job timeout, once submitted

    async def run(self) -> None:
        prompt = with_output_folder(await self._stage_inputs(), self.folder)
        client_id = f"cw-push-{uuid.uuid4().hex[:12]}"
        listener = asyncio.create_task(self._listen(client_id), name=f"ws {self.id}")
        try:
            # The socket first, where it connects at once (a warm endpoint): the run's first
            # messages are not missed. A cold one is not waited for.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SOCKET_FIRST):
                    await self._socket_open.wait()
            if self.behind:  # it will wait for the job before it (said first: it cannot
                # overtake the news that it started, which only comes once it is posted)
                await self.handle.tell(EventType.JOB_PHASE, {"detail": NEXT_ON_GPU_PHASE})
            await self._submit(prompt, client_id)
            self.posted.set()
            # A job posted behind another has the job timeout from its start (`started_now`);
            # until then, twice that (the job before it has its own).
            timeout = self.config.job_timeout * (2 if self.behind else 1)
            async with asyncio.timeout(timeout) as self._deadline:
                entry = await self._wait()
            # The GPU is free: the slot's next job starts while this one's socket closes and
            # its outputs are copied.
            self.executed.set()
        finally:
            listener.cancel()
            await asyncio.wait({listener}, timeout=_SOCKET_CLOSE)
            if not listener.done():
                log.warning("job=%s: its socket relay did not stop", self.id)
        await self._deliver(entry)
        error = history_error(entry)
        if error is not None:
            await self.handle.fail(error)
        else:
            await self.handle.complete()

    async def forget(self) -> None:
        """Take the prompt off the endpoint (cancelled, timed out, lost). Through a load
        balancer each ask may reach another replica, so each is asked `_FORGET_ASKS` times in a
        row (a round-robin balancer gives consecutive asks to that many different replicas;
        interleaving the two kinds would send every interrupt to the same half of them):
        first out of the queues, then interrupted where it runs (a prompt that started
        meanwhile is caught by the interrupts)."""
        for _ in range(_FORGET_ASKS):
            await self.client.unqueue(self.prompt_id)
        for _ in range(_FORGET_ASKS):
            await self.client.interrupt(self.prompt_id)

    async def started_now(self) -> None:
        if self.behind and not self.started and self._deadline is not None:
            loop = asyncio.get_running_loop()
            self._deadline.reschedule(loop.time() + self.config.job_timeout)
        await super().started_now()

    async def take_back(self) -> bool:
        """Out of the endpoint's queue if it has not started: deleted (asked as `forget` asks,
        through a balancer), then looked for. Found running or done: too late. Asked again
        while the endpoint does not answer; never answering, it is kept (it may have started:
        if it was deleted, it is lost to the endpoint and goes back as a lost prompt does)."""
        if self.started:
            return False
        for _ in range(_FORGET_ASKS):
            await self.client.unqueue(self.prompt_id)
        for _ in range(_LOOKUPS):
            try:
                if await self.client.queue_place(self.prompt_id) is not None:
                    return False
                return await self.client.history(self.prompt_id) is None and not self.started
            except (EndpointDown, EndpointError) as exc:
                log.debug("job=%s take-back lookup: %s", self.id, exc)
                await asyncio.sleep(0.2)
        return False

    # -- 1. inputs ---------------------------------------------------------------------------

    async def _stage_inputs(self) -> dict[str, Any]:
        renames: dict[tuple[str, str], str] = {}
        for ref in file_inputs(self.handle.prompt, self.object_info):
            source = await self.handle.input_file(ref)
            remote = f"cw_{self.handle.job.user}_{self.id[:8]}_{Path(ref.name).name}"
            renames[(ref.node_id, ref.input_name)] = await self._put_input(source, remote)
        return with_renamed_inputs(self.handle.prompt, renames)

    async def _put_input(self, source: Path, name: str) -> str:
        if self.config.inputs != "upload":
            await asyncio.to_thread(_copy_into, source, Path(self.config.inputs), name)
            return name
        stored: str = await self._patiently(lambda: self.client.upload_input(source, name))
        return stored

    # -- 2. submission -----------------------------------------------------------------------

    async def _submit(self, prompt: dict[str, Any], client_id: str) -> None:
        extra = self.handle.extra_data

        async def post() -> None:
            say = asyncio.create_task(self.held_after(self.monitor.now()))
            try:
                await self.client.post_prompt(prompt, self.prompt_id, client_id, extra)
            except DeliveryUnknown:
                if not await self._known():
                    raise
                log.info("job=%s: the lost POST /prompt had arrived; not sent again", self.id)
            finally:
                say.cancel()

        await self._patiently(post)
        self._last_seen, self._unknown = time.monotonic(), 0
        log.info("job=%s submitted to endpoint=%s", self.id, self.config.name)

    async def _patiently(self, call: Any) -> Any:
        """A call retried while the endpoint is cold or starting, up to its cold-start timeout."""
        first_down: float | None = None
        backoff = 0.5
        while True:
            try:
                result = await call()
            except EndpointDown as exc:
                now = time.monotonic()
                if first_down is None:
                    first_down = now
                    await self.say_starting()
                await self.monitor.down(str(exc))
                if now - first_down >= self.config.cold_start_timeout:
                    raise ColdStartTimeout(
                        f"endpoint {self.config.name} did not start within "
                        f"{self.config.cold_start_timeout:.0f} s ({exc})"
                    ) from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 1.5, 5.0)
                continue
            await self.monitor.answered()
            return result

    async def _known(self) -> bool:
        """Whether some replica has the prompt (queued, running or done)."""
        for _ in range(_LOOKUPS):
            with contextlib.suppress(EndpointDown):
                if await self.client.history(self.prompt_id) is not None:
                    return True
                if await self.client.queue_place(self.prompt_id) is not None:
                    return True
            await asyncio.sleep(0.2)
        return False

    # -- 3. waiting --------------------------------------------------------------------------

    async def _wait(self) -> dict[str, Any]:
        """The run's history entry (or, where no replica ever returns one, what the socket saw)."""
        while True:
            entry = await self._ask_history()
            if entry is not None:
                return entry
            if self._socket_end is not None:
                at, entry = self._socket_end
                if time.monotonic() - at >= _SOCKET_GRACE:
                    log.info(
                        "job=%s: no history from any replica; the socket's end is used", self.id
                    )
                    return entry
            lost_for = time.monotonic() - self._last_seen
            if lost_for >= self.settings.endpoint_lost_seconds and self._unknown >= _LOST_AFTER:
                left = await self._left_in_mount()
                if left is not None:
                    return left
                raise PromptLost(
                    f"no replica of endpoint {self.config.name} has listed the prompt for "
                    f"{lost_for:.0f} s (lost with its replica?)"
                )
            # Until the next poll, or at once when the socket says the run ended (and then
            # often: ComfyUI writes the history entry just after its last message).
            pause = self.settings.endpoint_poll_seconds
            if self._socket_end is not None:
                pause = min(pause, _AFTER_THE_END)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._ended.wait()
            self._ended.clear()

    async def _left_in_mount(self) -> dict[str, Any] | None:
        """Where no replica lists the prompt any more but its folder on the shared output mount
        holds files, the run ended there (its history lost with its replica): its files."""
        if self.config.outputs == "view":
            return None
        files = await asyncio.to_thread(_files_under, Path(self.config.outputs) / self.folder)
        if not files:
            return None
        outputs = outputs_from_folder(self.folder, files, save_prefixes(self.handle.prompt))
        log.info("job=%s: no replica knows it; %d file(s) found in its mount folder", self.id,
                 len(files))  # fmt: skip
        return {"outputs": outputs, "status": {"status_str": "success", "completed": True}}

    async def _ask_history(self) -> dict[str, Any] | None:
        try:
            entry = await self.client.history(self.prompt_id)
            if entry is not None and history_finished(entry):
                return entry
            place = None if entry is not None else await self.client.queue_place(self.prompt_id)
            if entry is not None or place is not None:
                self._last_seen, self._unknown = time.monotonic(), 0
            else:
                self._unknown += 1
            if place == "running":
                await self.started_now()
            await self.monitor.answered()
        except EndpointDown as exc:  # a replica restarting, the balancer busy: ask again
            log.debug("job=%s history: %s", self.id, exc)
            self._unknown += 1
        return None

    async def _listen(self, client_id: str) -> None:
        """Relay what the socket shows of our run; reconnect while the job runs."""
        while True:
            try:
                async with self.client.events(client_id) as ws:
                    self._socket_open.set()
                    async for raw in ws:
                        await self._relay(raw)
                        # A Redis call in the relay may swallow the cancellation that ends
                        # the run (redis-py): take it up again, or this socket lives on.
                        reraise_if_cancelled()
            except EndpointDown as exc:
                log.debug("job=%s socket: %s", self.id, exc)
            except LeaseLost:  # cancelled or given away: the slot's heartbeat stops the run
                return
            except Exception:  # a relay must never end the run
                log.exception("job=%s: socket relay failed", self.id)
            await asyncio.sleep(1.0)

    async def _relay(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            frame = parse_frame(raw)
            if isinstance(frame, Preview) and self._started:
                await self.handle.preview(frame.image, frame.mime)
            return
        message = json.loads(raw)
        kind, data = message.get("type"), message.get("data") or {}
        if not isinstance(data, dict) or data.get("prompt_id") != self.prompt_id:
            return
        self._last_seen, self._unknown = time.monotonic(), 0
        if kind == "execution_start":
            await self.started_now()
        elif kind == "executing" and data.get("node") is not None:
            await self.handle.tell(EventType.JOB_EXECUTING, {"node": str(data["node"])})
        elif kind == "executing":
            # ComfyUI says this after writing the history entry: ask for it now (asked at
            # `execution_success`, a moment before, it is often not there yet).
            self._ended.set()
        elif kind == "progress" and time.monotonic() - self._progress_at >= _PROGRESS_EVERY:
            self._progress_at = time.monotonic()
            progress: dict[str, JsonValue] = {
                "value": data.get("value"), "max": data.get("max"), "node": data.get("node"),
            }  # fmt: skip
            await self.handle.tell(EventType.JOB_PROGRESS, progress)
        elif kind == "executed" and isinstance(data.get("output"), dict):
            self._socket_outputs[str(data.get("node"))] = data["output"]
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            self._socket_end = (time.monotonic(), self._socket_entry(kind, data))
            self._ended.set()

    def _socket_entry(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """A history entry made of what the socket saw, in ComfyUI's shape."""
        if kind == "execution_success":
            status = {"status_str": "success", "completed": True, "messages": []}
        else:
            shown = execution_error(data) if kind == "execution_error" else interrupted_error(data)
            log.info("job=%s: the socket saw %s", self.id, shown["message"])
            status = {"status_str": "error", "completed": False, "messages": [[kind, data]]}
        return {"outputs": dict(self._socket_outputs), "status": status}

    # -- 4. outputs --------------------------------------------------------------------------

    async def _deliver(self, entry: dict[str, Any]) -> None:
        refs, values = history_outputs(entry)
        for ref in refs:
            await self._store(ref)
        for node_id in sorted({ref.node_id for ref in refs} | set(values)):
            await self.handle.tell(
                EventType.JOB_EXECUTED, {"node": node_id, "output": values.get(node_id, {})}
            )

    async def _store(self, ref: OutputRef) -> None:
        subfolder = without_folder(ref.subfolder, self.folder)
        if ref.type == "output" and self.config.outputs != "view":
            path = await asyncio.to_thread(
                file_inside, Path(self.config.outputs), f"{ref.subfolder}/{ref.filename}"
            )
            if path is None:
                raise OutputMissing(f"{ref.filename} is not in the shared output folder")
            await self.handle.store(ref, subfolder, _read(path))
            return
        for attempt in range(_VIEW_TRIES):
            try:
                async with self.client.view(ref) as response:
                    await self.handle.store(ref, subfolder, response.aiter_raw(_CHUNK))
                return
            except (NotOnThisReplica, EndpointDown) as exc:
                log.debug("job=%s /view %s: %s", self.id, ref.filename, exc)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        raise OutputMissing(f"no replica of {self.config.name} has {ref.filename}")


def prompt_id_of(job_id: str, attempt: int) -> str:
    """The prompt id an attempt of a job has on the endpoint. ComfyUI keys its queue and
    history by prompt id, so each attempt has its own (the job's id for the first): an attempt
    run again on the same endpoint must not read the last one's history entry (interrupted,
    say) as its own."""
    if attempt == 1:
        return job_id
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfy-workshop:{job_id}:{attempt}"))


async def _read(path: Path) -> AsyncIterator[bytes]:
    async with aiofiles.open(path, "rb") as fh:
        while chunk := await fh.read(_CHUNK):
            yield chunk


def _files_under(folder: Path) -> list[str]:
    """Regular files below `folder` (relative, `/`-separated); links are not followed."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            found.append(path.relative_to(folder).as_posix())
    return found


def _copy_into(source: Path, folder: Path, name: str) -> None:
    """Copy a participant's input into the shared input folder (temp name, then rename)."""
    target = folder / name
    temp = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
    with source.open("rb") as src, temp.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
    temp.replace(target)
