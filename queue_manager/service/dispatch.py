"""A GPU worker's use cases: join, claim (a long poll), report, store outputs, finish.

A worker can only act on the job attempt it holds; anything else is LeaseLost, which also tells
it to stop a job that was cancelled or given to someone else. Each output file is recorded on
the job when it is written, so `complete` carries the outcome only.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from queue_manager.comfy.validation import ServerCrash, response_body, validate_prompt
from queue_manager.contract.worker_api import OutputUpload, StoredOutput
from queue_manager.core.bodies import parse_json
from queue_manager.core.credentials import PREFIX as LEASE_PREFIX
from queue_manager.core.credentials import (
    LeaseGrant,
    WorkerCredential,
    mint_lease_token,
    read_lease_token,
)
from queue_manager.core.errors import FileMissing, MalformedBody, StorageLimit, WorkerNotFound
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import Job, JobError
from queue_manager.core.paths import Kind, requested_path, safe_output_path
from queue_manager.core.queueing import Claimed, Signal, Wakeup
from queue_manager.core.reports import stored_fields
from queue_manager.core.requirements import Capabilities
from queue_manager.service.estimates import EstimateCases
from queue_manager.service.parts import log
from queue_manager.storage.listing import input_exists
from queue_manager.storage.static_files import file_inside

MAX_OBJECT_INFO_BYTES = 64 * 2**20  # decompressed; ComfyUI 0.25 with many custom nodes: ~10 MB
MAX_PREVIEW_BYTES = 2 * 2**20


class DispatchCases(EstimateCases):
    async def worker_for_token(self, token: str) -> WorkerCredential | None:
        """Who a valid token names: a worker by its own `cwt.<name>.<secret>` token, or one
        pushed job attempt by a `cwl.` lease token (`core.credentials`)."""
        if token.startswith(f"{LEASE_PREFIX}."):
            grant = read_lease_token(self._secret(), token, self._clock())
            return None if grant is None else WorkerCredential(grant.worker, grant)
        worker = await self._tokens.verify(token)
        return None if worker is None else WorkerCredential(worker)

    def lease_token(self, worker_id: WorkerId, job_id: JobId, attempt: int, ttl: float) -> str:
        """A token with which the agent a job was pushed to reports that attempt as the slot
        worker holding it, for `ttl` seconds (endpoint kind `agent`)."""
        grant = LeaseGrant(worker_id, job_id, attempt, self._clock() + ttl)
        return mint_lease_token(self._secret(), grant)

    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    async def register_worker(
        self, worker_id: WorkerId, caps: Capabilities, info: dict[str, JsonValue]
    ) -> None:
        requeued = await self._workers.register(worker_id, caps, info)
        self._did(
            "worker joined", "worker=%s nodes=%d models=%s requeued=%s", worker_id,
            len(caps.node_types), "unreported" if caps.models is None else len(caps.models),
            requeued,
        )  # fmt: skip
        if requeued:
            await self.delete_lost_outputs()
        await self.refresh_holds()

    async def publish_object_info(self, worker_id: WorkerId, raw: bytes, gzipped: bool) -> None:
        """The worker's ComfyUI node catalogue: what participants' pages list and what their
        prompts are validated against."""
        if gzipped:
            raw = await asyncio.to_thread(_gunzip, raw, MAX_OBJECT_INFO_BYTES)
        info = await asyncio.to_thread(parse_json, raw)
        if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
            raise MalformedBody("object_info must map node names to node descriptions")
        await self._catalog.publish(worker_id, raw.decode())
        self._did("catalogue published", "worker=%s nodes=%d", worker_id, len(info))
        await self._check_held_prompts()

    async def _check_held_prompts(self) -> None:
        """Prompts queued before any GPU catalogue was known are checked now, as ComfyUI would
        have checked them at Run: the invalid ones fail at once with ComfyUI's error (the
        participant sees which node), rather than on a GPU or never."""
        view = await self._catalog.current()
        if not view.from_workers:
            return
        snap = await self._jobs.snapshot()
        queued = [j.id for lane in snap.lanes for u in lane.users for j in u.jobs]
        held = [job for job in await self._jobs.get_many(queued) if job.unvalidated]
        valid = []
        for job in held:
            error = await asyncio.to_thread(
                _validation_error, job, view.object_info, input_exists(self._files, job.user)
            )
            if error is None:
                valid.append(job.id)
            elif await self._jobs.reject(job.id, error):
                self._did("rejected", "job=%s user=%s error=%s", job.id, job.user, error.message)
        await self._jobs.mark_validated(valid)

    async def claim(self, worker_id: WorkerId, wait: float) -> Claimed | None:
        """The worker's next job, waiting up to `wait` seconds (capped by the settings) for one
        to become claimable. Cancelled (the agent hung up), it hands back anything given to it
        in the meantime rather than leaving it to its lease."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self.settings.claim_wait_seconds)
        job: Claimed | None = None
        got = await self._jobs.claim(worker_id, wait=True)
        try:
            while True:
                if isinstance(got, Claimed):
                    job = got
                    break
                if got is Wakeup.WAKE:
                    got = await self._jobs.claim(worker_id, wait=True)
                    continue
                remaining = deadline - loop.time()
                if got is Wakeup.STOP or remaining <= 0:
                    job = await self._jobs.unwait(worker_id)
                    break
                # Blocking pops stay under the client's socket timeout.
                got = await self._jobs.wait_inbox(worker_id, min(remaining, 10.0))
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon_claim(worker_id, job))
            raise
        if job is not None:
            self._did(
                "claimed", "job=%s user=%s worker=%s attempt=%d waited=%.3fs", job.id, job.user,
                worker_id, job.attempts, job.claimed_at - job.created_at,
            )  # fmt: skip
        return job

    async def stop_waiting(self, worker_id: WorkerId) -> None:
        """The worker is stopping: its long poll answers now, with a job only if one was
        already given to it (which it then runs before it leaves)."""
        await self._jobs.stop_waiting(worker_id)
        log.debug("stop waiting worker=%s", worker_id)

    async def _abandon_claim(self, worker_id: WorkerId, job: Claimed | None) -> None:
        handed = job or await self._jobs.unwait(worker_id)
        if handed is not None:
            await self._jobs.release(handed)
            self._did("released", "job=%s worker=%s reason=claim abandoned", handed.id, worker_id)

    async def heartbeat(self, worker_id: WorkerId, job_id: JobId | None, attempt: int) -> None:
        """The worker is alive (and still running `job_id`: its lease is renewed). Quiet: it
        comes every few seconds from every worker (DEBUG)."""
        await self._jobs.heartbeat(worker_id, job_id, attempt)
        log.debug("heartbeat worker=%s job=%s attempt=%d", worker_id, job_id, attempt)

    async def report(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        attempt: int,
        kind: EventType,
        data: dict[str, JsonValue],
    ) -> None:
        """A phase or progress of a held job: announced, and kept on the job where a page needs
        it later (`core.reports`). Files a node produced are announced as this queue manager
        stored them, never as the worker describes them."""
        if kind is EventType.JOB_EXECUTED:
            node = data.get("node")
            stored = await self._jobs.attempt_outputs(job_id, attempt)
            data = {**data, "files": [d for d in stored if d.get("node_id") == node]}
        store = stored_fields(kind, data, self._clock())
        await self._jobs.report(job_id, worker_id, attempt, kind, data, store)
        log.debug("reported job=%s worker=%s kind=%s", job_id, worker_id, kind)

    async def report_many(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        attempt: int,
        reports: Sequence[tuple[EventType, dict[str, JsonValue]]],
    ) -> None:
        """Reports that queued up on the worker, in their order (`report` each): one request
        for all of them. A refusal (the attempt lost its job) stops at the first."""
        for kind, data in reports:
            await self.report(job_id, worker_id, attempt, kind, data)

    async def set_preview(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, image: bytes, mime: str
    ) -> None:
        """The latest preview of a running job (sampler steps); small, replaced each time."""
        if len(image) > MAX_PREVIEW_BYTES:
            raise StorageLimit(MAX_PREVIEW_BYTES)
        await self._jobs.set_preview(job_id, worker_id, attempt, image, mime)
        log.debug("preview job=%s worker=%s bytes=%d", job_id, worker_id, len(image))

    async def store_output(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        upload: OutputUpload,
        body: AsyncIterable[bytes],
    ) -> StoredOutput:
        """Stream one output into the job's user's folder (a safe name, never overwriting) and
        record it on the job. Idempotent per (job, attempt, reported name): a retry after a
        lost answer gets the first file back. Nothing stays behind when it fails."""
        user = await self._jobs.held_by(job_id, worker_id, upload.attempt)
        reported = f"{upload.type}/{upload.subfolder}/{upload.filename}"
        known = await self._jobs.recorded_output(job_id, upload.attempt, reported)
        if known is not None:
            return StoredOutput.model_validate(known)
        kind: Kind = "temp" if upload.type == "temp" else "outputs"
        rel = safe_output_path(upload.subfolder, upload.filename)
        stored = await self._files.write_stream(
            kind, user, rel, body, max_bytes=self.settings.max_output_bytes
        )
        parent = stored.path.parent.as_posix()
        output = StoredOutput(
            filename=stored.path.name,
            subfolder="" if parent == "." else parent,
            type=upload.type,
            size=stored.size,
            node_id=upload.node_id,
            media=upload.media,
        )
        try:
            new, recorded = await self._jobs.record_output(
                job_id, worker_id, upload.attempt, reported, output.model_dump()
            )
        except BaseException:  # the lease was lost mid-copy, or Redis went away
            await asyncio.shield(self._files.discard(kind, user, stored.path))
            raise
        if not new:  # a concurrent retry recorded it first
            await self._files.discard(kind, user, stored.path)
            return StoredOutput.model_validate(recorded)
        self._metrics.output_bytes.inc(stored.size)
        self._did(
            "output stored", "job=%s user=%s worker=%s file=%s bytes=%d", job_id, user,
            worker_id, stored.path, stored.size,
        )  # fmt: skip
        return output

    async def input_file(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, kind: Kind, name: str
    ) -> Path:
        """One of the job's user's files (an uploaded input or an earlier output), to stage on
        the worker's ComfyUI: only for the job the worker holds, only inside that folder."""
        user = await self._jobs.held_by(job_id, worker_id, attempt)
        sub, _, filename = name.rpartition("/")
        rel = requested_path(sub, filename)
        found = await asyncio.to_thread(file_inside, self._files.user_dir(kind, user), str(rel))
        if found is None:
            raise FileMissing(name)
        return found

    async def release(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, why: str = "its ComfyUI failed"
    ) -> None:
        """The worker cannot finish the job (its ComfyUI failed, an endpoint's cold start
        outlasted its timeout): back to the queue now, the attempt counted."""
        await self._jobs.held_by(job_id, worker_id, attempt)
        reason = f"given back by worker {worker_id} ({why})"
        await self._jobs.release_held(job_id, worker_id, attempt, reason)
        self._did("released", "job=%s worker=%s attempt=%d", job_id, worker_id, attempt)
        await self.delete_lost_outputs()

    async def give_back(self, job_id: JobId, worker_id: WorkerId, attempt: int) -> bool:
        """A job handed to the worker early, deleted from its ComfyUI's queue before it
        started: queued again where it was, its attempt not counted. False: too late, it
        started (the worker keeps running it)."""
        reason = f"given back by worker {worker_id} before it started (attempt not counted)"
        returned = await self._jobs.give_back(job_id, worker_id, attempt, reason)
        self._did(
            "given back" if returned else "give-back too late",
            "job=%s worker=%s attempt=%d", job_id, worker_id, attempt,
        )  # fmt: skip
        return returned

    async def signals(self, worker_id: WorkerId, wait: float) -> list[Signal]:
        """What the worker must act on at once for the jobs it holds (a cancel, a take-back),
        waiting up to `wait` seconds (capped by the claim wait) for something to say."""
        await self._workers.get(worker_id)  # an unknown worker hears so, not silence
        return await self._workers.wait_signals(
            worker_id, min(wait, self.settings.claim_wait_seconds, 10.0)
        )

    async def leave(self, worker_id: WorkerId) -> None:
        """The worker stops (drained, or told to stop now) and says so: it is gone from the
        room at once rather than after its heartbeats lapse, and a job still given to it (a
        claim answered as it stopped, which it never saw) goes straight back to the queue."""
        with contextlib.suppress(WorkerNotFound):  # removed meanwhile: nothing left to do
            requeued = await self._workers.set_state(worker_id, "left")
            self._did("worker left", "worker=%s requeued=%s", worker_id, requeued)
            if requeued:
                await self.delete_lost_outputs()
            await self.refresh_holds()

    async def complete(self, job_id: JobId, worker_id: WorkerId, attempt: int) -> None:
        await self._jobs.complete(job_id, worker_id, attempt)
        await self._note_run_time(job_id)  # what the next estimates learn from
        self._did("completed", "job=%s worker=%s attempt=%d", job_id, worker_id, attempt)

    async def fail(self, job_id: JobId, worker_id: WorkerId, attempt: int, error: JobError) -> None:
        await self._jobs.fail(job_id, worker_id, attempt, error)
        self._did(
            "failed", "job=%s worker=%s attempt=%d error=%s", job_id, worker_id, attempt,
            error.type,
        )  # fmt: skip


def _validation_error(
    job: Job, object_info: dict[str, Any], file_exists: Callable[[str], bool]
) -> JobError | None:
    """ComfyUI's verdict on a queued job's prompt, as the job's error (None: valid)."""
    try:
        result = validate_prompt(
            job.prompt, object_info, input_file_exists=file_exists,
            partial_execution_targets=job.targets or None,
        )  # fmt: skip
    except ServerCrash as exc:
        return JobError(type="prompt_invalid", message=f"this prompt cannot be read: {exc}")
    if result.ok:
        return None
    body = response_body(result, job.id, job.seq)
    error, node_errors = body["error"], body["node_errors"]
    first = next(iter(node_errors.items()), None)
    return JobError(
        type=str(error.get("type") or "prompt_outputs_failed_validation"),
        message=_readable(error, node_errors),
        node_id=first[0] if first else None,
        node_type=first[1].get("class_type") if first else None,
        details={"exception_type": "prompt_outputs_failed_validation", "node_errors": node_errors},
    )


def _readable(error: dict[str, Any], node_errors: dict[str, Any]) -> str:
    """ComfyUI's message with the first failing input spelled out (what the page shows)."""
    message = str(error.get("message") or "Prompt outputs failed validation")
    for node in node_errors.values():
        for err in node.get("errors") or []:
            detail = err.get("details") or err.get("message")
            if detail:
                return f"{message}: {node.get('class_type', 'a node')}: {detail}"
    return message


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress with a ceiling (a small gzip can expand enormously)."""
    out = zlib.decompressobj(wbits=31)
    try:
        result = out.decompress(data, limit + 1)
    except zlib.error as exc:
        raise MalformedBody("bad gzip body") from exc
    if len(result) > limit or out.unconsumed_tail:
        raise StorageLimit(limit)
    return result
