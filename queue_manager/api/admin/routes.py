"""The instructor's controls as JSON routes (`/admin/api/...`), each one call into the
service. Participants get 403 on every one of them; errors map to HTTP in `api.errors`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from queue_manager.comfy.history import SECRET_EXTRA
from queue_manager.core.errors import JobNotFound
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.workers import WorkerState
from queue_manager.service.overview import room_state
from queue_manager.store.accounts import AccountStore

from ..auth import Instructor
from ..deps import Service

router = APIRouter(prefix="/api", tags=["admin"])


class Priority(BaseModel):
    priority: Lane


class Limits(BaseModel):
    """Per-user limits; null returns that limit to the room default, -1 means no limit."""

    max_queued: int | None = Field(default=None, ge=-1)
    max_running: int | None = Field(default=None, ge=-1)


class UserPause(BaseModel):
    paused: bool = True


class Broadcast(BaseModel):
    message: str = Field(default="", max_length=500)


class Done(BaseModel):
    ok: bool = True


@router.get("/state")
async def state(request: Request, _: Instructor, service: Service) -> dict[str, Any]:
    """The whole room: queue by lane and user with true positions, running jobs, workers,
    per-user counts and waits, recent failures. Never prompts or workflows."""
    accounts: AccountStore = request.app.state.accounts
    return await room_state(service, accounts, time.time())


@router.get("/jobs/{job_id}")
async def job(job_id: JobId, _: Instructor, service: Service) -> dict[str, Any]:
    """A job with its full timeline (every transition: time, worker, reason)."""
    found = await service.jobs.get(job_id)
    return found.model_dump(
        mode="json", exclude={"prompt", "extra_data", "node_types", "models"}
    ) | {"extra_keys": sorted(k for k in found.extra_data if k not in SECRET_EXTRA)}


@router.get("/jobs/{job_id}/preview")
async def preview(job_id: JobId, _: Instructor, service: Service) -> Response:
    found = await service.jobs.preview(job_id)
    if found is None:
        raise JobNotFound(job_id)
    mime, image = found
    return Response(image, media_type=mime, headers={"Cache-Control": "no-store"})


@router.post("/queue/pause")
async def pause(_: Instructor, service: Service) -> Done:
    await service.control.pause()
    return Done()


@router.post("/queue/resume")
async def resume(_: Instructor, service: Service) -> Done:
    await service.control.resume()
    return Done()


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: JobId, account: Instructor, service: Service) -> Done:
    await service.jobs.cancel(job_id, f"cancelled by the instructor ({account.name})")
    return Done()


@router.post("/jobs/{job_id}/front")
async def front(job_id: JobId, _: Instructor, service: Service) -> Done:
    await service.jobs.move_to_front(job_id)
    return Done()


@router.post("/jobs/{job_id}/priority")
async def priority(job_id: JobId, body: Priority, _: Instructor, service: Service) -> Done:
    await service.jobs.set_lane(job_id, body.priority)
    return Done()


@router.post("/workers/{worker_id}/drain")
async def drain(worker_id: WorkerId, _: Instructor, service: Service) -> Done:
    """The worker finishes its job and takes no more."""
    await service.set_worker_state(worker_id, WorkerState.DRAINING.value)
    return Done()


@router.delete("/workers/{worker_id}")
async def remove(worker_id: WorkerId, _: Instructor, service: Service) -> Done:
    """Forget the worker now; its running job goes back to the queue."""
    await service.set_worker_state(worker_id, "removed")
    return Done()


@router.put("/users/{user}/limits")
async def limits(user: UserId, body: Limits, _: Instructor, service: Service) -> Done:
    await service.control.set_user(user, clear_limits=True)
    if body.max_queued is not None or body.max_running is not None:
        await service.control.set_user(
            user, max_queued=body.max_queued, max_running=body.max_running
        )
    return Done()


@router.post("/users/{user}/pause")
async def pause_user(user: UserId, body: UserPause, _: Instructor, service: Service) -> Done:
    await service.control.set_user(user, paused=body.paused)
    return Done()


@router.post("/broadcast")
async def broadcast(body: Broadcast, _: Instructor, service: Service) -> Done:
    """Shown in every participant's ComfyUI until replaced; an empty message clears it."""
    await service.control.set_broadcast(body.message.strip())
    return Done()
