"""ComfyUI's queue API for one participant: prompt, queue, interrupt, history, jobs.

Identity and lane come from the login, never from the body: `number`, `front` and `client_id`
of someone else cannot move a job or reach another user's page. Everything reads that user's
own jobs only; another user's job id answers exactly like an unknown one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from queue_manager.comfy import history as views
from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import JobNotFound, PromptRejected
from queue_manager.core.ids import JobId

from ..bodies import read_capped
from ..deps import Service
from .access import Owner

router = APIRouter()

# Small action bodies (queue delete, interrupt, history delete).
_ACTION_BYTES = 1 << 20


async def read_json(request: Request, limit: int) -> object:
    """The request body as JSON (`{}` when blank), refusing more than `limit` bytes before
    reading them all, and anything that is not JSON or nests absurdly deep."""

    def refuse(declared: int | None) -> PromptRejected:
        if declared is not None:
            return PromptRejected(f"the request is {declared} bytes; at most {limit} are allowed")
        return PromptRejected(f"the request is over {limit} bytes, the most allowed")

    return parse_json(await read_capped(request, limit, refuse), empty={})


def _ok() -> Response:
    """ComfyUI's action answer: 200, empty body, no content type (so described: the routes
    that give it say `response_class=Response`)."""
    return Response(status_code=200)


def _ids(body: object, key: str) -> list[str] | None:
    """`{"clear": true}` -> None (all of them); `{key: [ids]}` -> those ids."""
    body = body if isinstance(body, Mapping) else {}
    if body.get("clear"):
        return None
    return [str(i) for i in body.get(key) or [] if isinstance(i, str)]


@router.post("/prompt")
async def post_prompt(request: Request, account: Owner, service: Service) -> JSONResponse:
    body = await read_json(request, service.prompt_request_limit)
    done = await service.submit_prompt(account, body)
    return JSONResponse({"prompt_id": done.id, "number": done.seq, "node_errors": done.node_errors})


@router.get("/prompt")
async def get_prompt(account: Owner, service: Service) -> dict[str, Any]:
    return {"exec_info": {"queue_remaining": await service.queue_remaining(account.name)}}


@router.get("/queue")
async def get_queue(account: Owner, service: Service) -> dict[str, Any]:
    jobs = await service.user_jobs(account.name)
    return views.queue(j for j in jobs if not j.status.is_final)


@router.post("/queue", response_class=Response)
async def post_queue(request: Request, account: Owner, service: Service) -> Response:
    """`{"delete": [ids]}` cancels those of the user's waiting jobs; `{"clear": true}` all
    of them. Running jobs are left alone, as in ComfyUI."""
    body = await read_json(request, _ACTION_BYTES)
    await service.remove_queued(account.name, _ids(body, "delete"))
    return _ok()


@router.post("/interrupt", response_class=Response)
async def interrupt(request: Request, account: Owner, service: Service) -> Response:
    """Stop the user's running job (`prompt_id` given: only if that one is running)."""
    body = await read_json(request, _ACTION_BYTES)
    target = body.get("prompt_id") if isinstance(body, Mapping) else None
    await service.interrupt(account.name, None if target is None else str(target))
    return _ok()


@router.post("/free", response_class=Response)
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


@router.post("/history", response_class=Response)
async def post_history(request: Request, account: Owner, service: Service) -> Response:
    body = await read_json(request, _ACTION_BYTES)
    await service.forget_history(account.name, _ids(body, "delete"))
    return _ok()


@router.get("/jobs")
async def list_jobs(request: Request, account: Owner, service: Service) -> JSONResponse:
    try:
        query = views.parse_jobs_query(request.query_params)
    except views.BadJobsQuery as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(views.list_jobs(await service.user_job_heads(account.name), query))


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
    return await service.workshop_status(account.name, time.time())
