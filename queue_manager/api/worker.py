"""The worker API: what a GPU agent calls, authenticated by its worker token (or, on the job
routes, by the lease token of the one attempt the queue manager pushed to our agent).

Bodies and answers are `contract.worker_api`'s models, which the agent imports too. Each route
calls one `QueueService` method; refusals map to HTTP (with an `ErrorCode`) in `api.errors`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from queue_manager.contract.worker_api import (
    PREFIX,
    Attempt,
    Failure,
    GivenBack,
    Heartbeat,
    OutputUpload,
    PreviewMime,
    Registration,
    Report,
    ReportBatch,
    SignalItem,
    Signals,
    StoredOutput,
)
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId
from queue_manager.core.requirements import Capabilities
from queue_manager.service.dispatch import MAX_OBJECT_INFO_BYTES, MAX_PREVIEW_BYTES

from .bodies import capped_json_route, read_capped
from .deps import JobCaller, Service, Worker

# A report, heartbeat or outcome is small; a registration lists the catalogue's node types and
# models (as large as the catalogue itself). Nothing a worker or a lease token sends may make
# the queue manager hold, store or fan out more than that (a 40 MiB failure message would be
# kept on the job and sent to the participant's page).
MAX_REPORT_BYTES = 2 * 2**20
router = APIRouter(
    prefix=PREFIX,
    tags=["worker"],
    route_class=capped_json_route(MAX_REPORT_BYTES, register=MAX_OBJECT_INFO_BYTES),
)


@router.post("/register", status_code=204)
async def register(body: Registration, worker: Worker, service: Service) -> None:
    models = None if body.models is None else frozenset(body.models)
    caps = Capabilities(frozenset(body.node_types), models)
    await service.register_worker(worker, caps, body.info)


@router.put("/object_info", status_code=204)
async def publish_object_info(request: Request, worker: Worker, service: Service) -> None:
    """The worker's ComfyUI node catalogue (JSON, optionally gzip-encoded)."""
    raw = await read_capped(request, MAX_OBJECT_INFO_BYTES)
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    await service.publish_object_info(worker, raw, gzipped)


@router.post("/claim", responses={204: {"description": "nothing to run yet: ask again"}})
async def claim(
    request: Request,
    worker: Worker,
    service: Service,
    wait: Annotated[float, Query(ge=0)] = 0,
) -> Response:
    """Long poll: the next job for this worker (an `Assignment`), or 204 after `wait` seconds
    (capped). If the agent hangs up while waiting, the claim is cancelled, which hands back
    any job given to it in the meantime."""
    claiming = asyncio.create_task(service.claim(worker, wait))
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


@router.post("/claim/stop", status_code=204)
async def stop_waiting(worker: Worker, service: Service) -> None:
    """The agent is stopping: its pending long poll (or the next, if this overtook it) answers
    now, with a job only if one was already given to it, which it then runs before it leaves."""
    await service.stop_waiting(worker)


@router.post("/leave", status_code=204)
async def leave(worker: Worker, service: Service) -> None:
    """The agent stops: gone from the room now, and any job still given to it requeued."""
    await service.leave(worker)


@router.post("/heartbeat", status_code=204)
async def heartbeat(body: Heartbeat, caller: JobCaller, service: Service) -> None:
    job_id = JobId(body.job_id) if body.job_id else None
    await service.heartbeat(caller.acting_on(job_id, body.attempt), job_id, body.attempt)


@router.post("/jobs/{job_id}/events", status_code=204)
async def report(job_id: JobId, body: Report, caller: JobCaller, service: Service) -> None:
    worker = caller.acting_on(job_id, body.attempt)
    await service.report(job_id, worker, body.attempt, EventType(body.type), body.data)


@router.post("/jobs/{job_id}/events/batch", status_code=204)
async def report_batch(
    job_id: JobId, body: ReportBatch, caller: JobCaller, service: Service
) -> None:
    worker = caller.acting_on(job_id, body.attempt)
    reports = [(EventType(r.type), r.data) for r in body.reports]
    await service.report_many(job_id, worker, body.attempt, reports)


@router.put("/jobs/{job_id}/outputs", status_code=201)
async def upload_output(
    job_id: JobId,
    request: Request,
    upload: Annotated[OutputUpload, Query()],
    caller: JobCaller,
    service: Service,
) -> StoredOutput:
    """Stream one output file into the job's user's folder; `temp` files (PreviewImage) go to
    the user's temp folder, as ComfyUI keeps them apart."""
    worker = caller.acting_on(job_id, upload.attempt)
    return await service.store_output(job_id, worker, upload, request.stream())


@router.get("/jobs/{job_id}/files/{kind}")
async def download_file(
    job_id: JobId,
    kind: Literal["inputs", "outputs"],
    caller: JobCaller,
    service: Service,
    attempt: int,
    name: str,
) -> FileResponse:
    """One of the job's user's files (an uploaded input, or an earlier output), to stage on
    the worker's ComfyUI."""
    worker = caller.acting_on(job_id, attempt)
    return FileResponse(await service.input_file(job_id, worker, attempt, kind, name))


@router.post("/jobs/{job_id}/release", status_code=204)
async def release(job_id: JobId, body: Attempt, caller: JobCaller, service: Service) -> None:
    """This worker cannot finish the job (its ComfyUI died): back to the queue now."""
    await service.release(job_id, caller.acting_on(job_id, body.attempt), body.attempt)


@router.post("/jobs/{job_id}/give-back")
async def give_back(job_id: JobId, body: Attempt, caller: JobCaller, service: Service) -> GivenBack:
    """A job handed early, deleted from this worker's ComfyUI queue before it started: back in
    the queue where it was, the attempt not counted (`returned` false: it started first)."""
    worker = caller.acting_on(job_id, body.attempt)
    return GivenBack(returned=await service.give_back(job_id, worker, body.attempt))


@router.post("/signals")
async def signals(
    request: Request,
    worker: Worker,
    service: Service,
    wait: Annotated[float, Query(ge=0)] = 0,
) -> Signals:
    """Long poll: what to do at once about jobs this worker holds (a cancel, a take-back);
    empty after `wait` seconds (capped)."""
    waiting = asyncio.create_task(service.signals(worker, wait))
    gone = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not waiting.done():
        waiting.cancel()
        await asyncio.wait({waiting})
        return Signals()
    return Signals(signals=[SignalItem(action=s.action.value, job=s.job) for s in waiting.result()])


@router.put("/jobs/{job_id}/preview", status_code=204)
async def upload_preview(
    job_id: JobId,
    request: Request,
    caller: JobCaller,
    service: Service,
    attempt: int,
    mime: PreviewMime = "image/jpeg",
) -> None:
    """The latest preview of a running job (sampler steps); small, replaced each time."""
    worker = caller.acting_on(job_id, attempt)
    image = await read_capped(request, MAX_PREVIEW_BYTES)
    await service.set_preview(job_id, worker, attempt, image, mime)


@router.post("/jobs/{job_id}/complete", status_code=204)
async def complete(job_id: JobId, body: Attempt, caller: JobCaller, service: Service) -> None:
    """The attempt finished well; its outputs are the files it stored."""
    await service.complete(job_id, caller.acting_on(job_id, body.attempt), body.attempt)


@router.post("/jobs/{job_id}/fail", status_code=204)
async def fail(job_id: JobId, body: Failure, caller: JobCaller, service: Service) -> None:
    await service.fail(job_id, caller.acting_on(job_id, body.attempt), body.attempt, body.error)
