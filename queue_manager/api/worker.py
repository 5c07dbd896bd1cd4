"""The worker API: what a GPU agent calls, authenticated by its worker token.

A worker can only act on the job attempt it holds; everything else is 409 (`LeaseLost`), which
also tells it to stop a job that was cancelled or given to someone else.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, JsonValue

from queue_manager.core.errors import StorageLimit
from queue_manager.core.ids import JobId
from queue_manager.core.jobs import JobError
from queue_manager.core.paths import Kind, requested_path, safe_output_path
from queue_manager.core.requirements import Capabilities

from .deps import Catalog, Files, Service, Worker

router = APIRouter(prefix="/worker/v1", tags=["worker"])


class Registration(BaseModel):
    node_types: list[str] = Field(min_length=1, max_length=50_000)
    models: list[str] | None = Field(default=None, max_length=200_000)
    info: dict[str, JsonValue] = {}


class Heartbeat(BaseModel):
    job_id: JobId | None = None
    attempt: int = 0


class Report(BaseModel):
    attempt: int
    type: str = Field(pattern=r"^job\.[a-z_]{1,32}$")
    data: dict[str, JsonValue] = {}


class Completion(BaseModel):
    attempt: int
    outputs: list[dict[str, JsonValue]] = Field(default_factory=list, max_length=10_000)


class Failure(BaseModel):
    attempt: int
    error: JobError


class Attempt(BaseModel):
    attempt: int


class StoredOutput(BaseModel):
    filename: str
    subfolder: str
    type: str = "output"
    size: int


@router.post("/register", status_code=204)
async def register(body: Registration, worker: Worker, service: Service) -> None:
    models = None if body.models is None else frozenset(body.models)
    caps = Capabilities(frozenset(body.node_types), models)
    await service.register_worker(worker, caps, body.info)


MAX_OBJECT_INFO_BYTES = 64 * 2**20  # decompressed; ComfyUI 0.25 with many custom nodes: ~10 MB


@router.put("/object_info", status_code=204)
async def publish_object_info(request: Request, worker: Worker, catalog: Catalog) -> None:
    """The worker's ComfyUI node catalogue (JSON, optionally gzip-encoded): what participants'
    pages list and what their prompts are validated against."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OBJECT_INFO_BYTES:
            raise StorageLimit(MAX_OBJECT_INFO_BYTES)
    raw = bytes(body)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        raw = await asyncio.to_thread(_gunzip, raw, MAX_OBJECT_INFO_BYTES)
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, "object_info must be JSON") from exc
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise HTTPException(400, "object_info must map node names to node descriptions")
    await catalog.publish(worker, raw.decode())


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress with a ceiling (a small gzip can expand enormously)."""
    out = zlib.decompressobj(wbits=31)
    try:
        result = out.decompress(data, limit + 1)
    except zlib.error as exc:
        raise HTTPException(400, "bad gzip body") from exc
    if len(result) > limit or out.unconsumed_tail:
        raise StorageLimit(limit)
    return result


@router.post("/claim", responses={204: {"description": "nothing to run yet: ask again"}})
async def claim(
    request: Request,
    worker: Worker,
    service: Service,
    wait: Annotated[float, Query(ge=0)] = 0,
) -> Response:
    """Long poll: the next job for this worker, or 204 after `wait` seconds (capped).

    If the agent hangs up while waiting, the claim is cancelled, which hands back any job that
    was given to it in the meantime (rather than leaving it to its lease).
    """
    claiming = asyncio.create_task(
        service.claim(worker, min(wait, service.settings.claim_wait_seconds))
    )
    gone = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({claiming, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not claiming.done():
        claiming.cancel()
        await asyncio.wait({claiming})
        return Response(status_code=499)
    job = claiming.result()
    if job is None:
        return Response(status_code=204)
    head = json.dumps(
        {
            "id": job.id,
            "attempt": job.attempts,
            "user": job.user,
            "lane": job.lane,
            "client_id": job.client_id,
        }
    )
    # The prompt and extra_data travel as the participant sent them: spliced, never re-encoded.
    body = f'{head[:-1]}, "prompt": {job.prompt_json}, "extra_data": {job.extra_data_json}}}'
    return Response(body, media_type="application/json")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/heartbeat", status_code=204)
async def heartbeat(body: Heartbeat, worker: Worker, service: Service) -> None:
    await service.jobs.heartbeat(worker, body.job_id, body.attempt)


@router.post("/jobs/{job_id}/events", status_code=204)
async def report(job_id: JobId, body: Report, worker: Worker, service: Service) -> None:
    await service.report(job_id, worker, body.attempt, body.type, body.data)


@router.put("/jobs/{job_id}/outputs", status_code=201)
async def upload_output(
    job_id: JobId,
    request: Request,
    worker: Worker,
    service: Service,
    files: Files,
    attempt: int,
    filename: str,
    subfolder: str = "",
    type: Literal["output", "temp"] = "output",
) -> StoredOutput:
    """Stream one output file into the job's user's folder (a safe name, never overwriting).
    `temp` files (PreviewImage) go to the user's temp folder, as ComfyUI keeps them apart."""
    user = await service.jobs.held_by(job_id, worker, attempt)
    rel = safe_output_path(subfolder, filename)
    kind: Kind = "temp" if type == "temp" else "outputs"
    stored = await files.write_stream(
        kind, user, rel, request.stream(), max_bytes=service.settings.max_output_bytes
    )
    await service.jobs.held_by(job_id, worker, attempt)  # still ours after a long copy
    request.app.state.metrics.output_bytes.inc(stored.size)
    parent = stored.path.parent.as_posix()
    return StoredOutput(
        filename=stored.path.name,
        subfolder="" if parent == "." else parent,
        type=type,
        size=stored.size,
    )


@router.get("/jobs/{job_id}/files/{kind}")
async def download_file(
    job_id: JobId,
    kind: Literal["inputs", "outputs"],
    worker: Worker,
    service: Service,
    files: Files,
    attempt: int,
    name: str,
) -> FileResponse:
    """One of the job's user's files (an uploaded input, or an earlier output), to stage on
    the worker's ComfyUI. Only for the job the worker holds; only inside that user's folder."""
    user = await service.jobs.held_by(job_id, worker, attempt)
    sub, _, filename = name.rpartition("/")
    path = files.user_dir(kind, user) / requested_path(sub, filename)
    if not await asyncio.to_thread(_regular_file_inside, path, files.user_dir(kind, user)):
        raise HTTPException(404, "no such file")
    return FileResponse(path)


def _regular_file_inside(path: Path, root: Path) -> bool:
    try:
        real, base = path.resolve(strict=True), root.resolve(strict=True)
    except OSError:
        return False
    return real.is_relative_to(base) and real.is_file()


@router.post("/jobs/{job_id}/release", status_code=204)
async def release(job_id: JobId, body: Attempt, worker: Worker, service: Service) -> None:
    """This worker cannot finish the job (its ComfyUI died): back to the queue now."""
    await service.jobs.held_by(job_id, worker, body.attempt)
    await service.jobs.release_held(
        job_id, worker, body.attempt, f"given back by worker {worker} (its ComfyUI failed)"
    )


MAX_PREVIEW_BYTES = 2 * 2**20


@router.put("/jobs/{job_id}/preview", status_code=204)
async def upload_preview(
    job_id: JobId,
    request: Request,
    worker: Worker,
    service: Service,
    attempt: int,
    mime: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg",
) -> None:
    """The latest preview of a running job (sampler steps); small, replaced each time."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PREVIEW_BYTES:
            raise StorageLimit(MAX_PREVIEW_BYTES)
    await service.jobs.set_preview(job_id, worker, attempt, bytes(body), mime)


@router.post("/jobs/{job_id}/complete", status_code=204)
async def complete(job_id: JobId, body: Completion, worker: Worker, service: Service) -> None:
    await service.jobs.complete(job_id, worker, body.attempt, body.outputs)


@router.post("/jobs/{job_id}/fail", status_code=204)
async def fail(job_id: JobId, body: Failure, worker: Worker, service: Service) -> None:
    await service.jobs.fail(job_id, worker, body.attempt, body.error)
