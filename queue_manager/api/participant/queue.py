"""ComfyUI's queue API for one participant: prompt, queue, interrupt, history, jobs.

Identity and lane come from the login, never from the body: `number`, `front` and `client_id`
of someone else cannot move a job or reach another user's page. Everything reads that user's
own jobs only; another user's job id answers exactly like an unknown one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from queue_manager.comfy import history as views
from queue_manager.comfy.validation import (
    ServerCrash,
    response_body,
    submission_error,
    validate_prompt,
)
from queue_manager.core.errors import JobNotFound, PromptRejected
from queue_manager.core.ids import JobId, UserId, is_job_id
from queue_manager.core.jobs import JobStatus
from queue_manager.storage.listing import input_exists

from ..deps import Catalog, Files, Service
from .access import Owner, lane_of
from .status import workshop_status

router = APIRouter()

# The page also sends the UI workflow in extra_data (often larger than the prompt itself).
_BODY_FACTOR = 4


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PromptRejected(f"the request is {declared} bytes; at most {limit} are allowed")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PromptRejected(f"the request is over {limit} bytes, the most allowed")
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise PromptRejected(f"the request body is not JSON ({exc})") from exc


def _ok() -> Response:
    """ComfyUI's action answer: 200, empty body, no content type."""
    return Response(status_code=200)


@router.post("/prompt")
async def post_prompt(
    request: Request, account: Owner, service: Service, catalog: Catalog, files: Files
) -> JSONResponse:
    body = await read_json(request, service.settings.max_prompt_bytes * _BODY_FACTOR)
    if not isinstance(body, Mapping):
        raise PromptRejected("the request body must be a JSON object")
    if (refusal := submission_error(body)) is not None:
        return JSONResponse(refusal, status_code=400)
    raw_prompt = body["prompt"]
    view = await catalog.current()
    targets: tuple[str, ...]
    if view.from_workers:
        try:
            result = validate_prompt(
                raw_prompt,
                view.object_info,
                input_file_exists=input_exists(files, account.name),
                partial_execution_targets=_targets(body.get("partial_execution_targets")),
            )
        except ServerCrash as exc:
            raise PromptRejected(f"this prompt cannot be read: {exc}") from exc
        if not result.ok:
            return JSONResponse(response_body(result, "", 0), status_code=400)
        prompt, targets, node_errors = result.prompt, tuple(result.outputs), result.node_errors
    else:
        # No GPU has told us its nodes yet: queue it (held until one joins); the worker's
        # ComfyUI validates it then.
        prompt, targets, node_errors = raw_prompt, _output_nodes(raw_prompt, view.object_info), {}
    extra = body.get("extra_data")
    client_id = body.get("client_id")
    job_id = body.get("prompt_id")
    done = await service.submit(
        account.name,
        lane_of(account),
        prompt,
        client_id=client_id if isinstance(client_id, str) and client_id else None,
        extra_data=extra if isinstance(extra, dict) else {},
        job_id=JobId(job_id) if isinstance(job_id, str) and is_job_id(job_id) else None,
        targets=targets,
    )
    return JSONResponse({"prompt_id": done.id, "number": done.seq, "node_errors": node_errors})


def _targets(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _output_nodes(prompt: Any, object_info: Mapping[str, Any]) -> tuple[str, ...]:
    if not isinstance(prompt, Mapping):
        return ()
    return tuple(
        str(node_id)
        for node_id, node in prompt.items()
        if isinstance(node, Mapping)
        and isinstance(node.get("class_type"), str)
        and object_info.get(node["class_type"], {}).get("output_node")
    )


@router.get("/prompt")
async def get_prompt(account: Owner, service: Service) -> dict[str, Any]:
    queued, running = await service.jobs.user_counts(account.name)
    return {"exec_info": {"queue_remaining": queued + running}}


@router.get("/queue")
async def get_queue(account: Owner, service: Service) -> dict[str, Any]:
    jobs = await service.user_jobs(account.name)
    return views.queue(j for j in jobs if not j.status.is_final)


@router.post("/queue")
async def post_queue(request: Request, account: Owner, service: Service) -> Response:
    """`{"delete": [ids]}` cancels those of the user's waiting jobs; `{"clear": true}` all
    of them. Running jobs are left alone, as in ComfyUI."""
    body = await read_json(request, 1 << 20)
    body = body if isinstance(body, Mapping) else {}
    waiting = [j.id for j in await service.user_jobs(account.name) if j.status is JobStatus.QUEUED]
    if body.get("clear"):
        chosen = waiting
    else:
        wanted = {str(i) for i in body.get("delete") or [] if isinstance(i, str)}
        chosen = [i for i in waiting if i in wanted]
    await service.cancel_own(account.name, chosen, "removed from the queue by the participant")
    return _ok()


@router.post("/interrupt")
async def interrupt(request: Request, account: Owner, service: Service) -> Response:
    """Stop the user's running job (`prompt_id` given: only if that one is running)."""
    body = await read_json(request, 1 << 20)
    target = body.get("prompt_id") if isinstance(body, Mapping) else None
    running = [
        j.id
        for j in await service.user_jobs(account.name)
        if j.status is JobStatus.RUNNING and (target is None or j.id == target)
    ]
    await service.cancel_own(account.name, running, "interrupted by the participant")
    return _ok()


@router.post("/free")
async def free(account: Owner) -> Response:
    """Accepted and ignored: the GPUs are shared, their memory is the workers' business."""
    return _ok()


@router.get("/history")
async def get_history(
    account: Owner, service: Service, max_items: int | None = None, offset: int | None = None
) -> dict[str, Any]:
    finished = [j for j in await service.user_jobs(account.name) if j.status.is_final]
    return views.history(finished, max_items, offset)


@router.get("/history/{prompt_id}")
async def get_history_item(prompt_id: str, account: Owner, service: Service) -> dict[str, Any]:
    """`{}` with 200 for unknown, unfinished or someone else's jobs, as ComfyUI answers."""
    try:
        job = await service.user_job(account.name, JobId(prompt_id))
    except JobNotFound:
        return {}
    return {job.id: views.history_entry(job)} if job.status.is_final else {}


@router.post("/history")
async def post_history(request: Request, account: Owner, service: Service) -> Response:
    body = await read_json(request, 1 << 20)
    body = body if isinstance(body, Mapping) else {}
    finished = [j.id for j in await service.user_jobs(account.name) if j.status.is_final]
    if body.get("clear"):
        chosen = finished
    else:
        wanted = {str(i) for i in body.get("delete") or [] if isinstance(i, str)}
        chosen = [i for i in finished if i in wanted]
    await service.jobs.forget(account.name, chosen)
    return _ok()


@router.get("/jobs")
async def list_jobs(request: Request, account: Owner, service: Service) -> JSONResponse:
    try:
        query = views.parse_jobs_query(request.query_params)
    except views.BadJobsQuery as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(views.list_jobs(await service.user_jobs(account.name), query))


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, account: Owner, service: Service) -> JSONResponse:
    try:
        job = await service.user_job(account.name, JobId(job_id))
    except JobNotFound:
        return JSONResponse({"error": "Job not found"}, status_code=404)
    return JSONResponse(views.job_detail(job))


@router.get("/workshop/status")
async def get_workshop_status(account: Owner, service: Service) -> dict[str, Any]:
    """What the workshop extension shows: true positions, phases, the broadcast."""
    return await workshop_status(service, UserId(account.name))
