"""The instructor's controls as JSON routes (`/admin/api/...`), each one call into the
service. Participants get 403 on every one of them; errors map to HTTP in `api.errors`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from queue_manager.comfy.history import SECRET_EXTRA
from queue_manager.core.endpoints import endpoint
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.room import RoomState

from ..auth import Instructor
from ..deps import AccountCases, Service

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


class EndpointBody(BaseModel):
    """A push endpoint, as `comfy-workshop endpoint add` takes it; headers as 'Name: value'."""

    url: str = Field(max_length=2000)
    kind: str = "comfyui"
    slots: int = 1
    headers: list[str] = Field(default_factory=list, max_length=20)
    outputs: str = "view"
    inputs: str = "upload"
    cold_start_timeout: float = 300.0
    job_timeout: float = 1800.0
    prefetch: int = 0


class Done(BaseModel):
    ok: bool = True


class SignedOut(BaseModel):
    ok: bool = True
    users: list[UserId] = Field(description="The participants whose sessions ended.")


@router.get("/state")
async def state(_: Instructor, service: Service) -> RoomState:
    """The whole room: queue by lane and user with true positions, running jobs, workers,
    per-user counts and waits, recent failures. Never prompts or workflows."""
    return await service.room_state(time.time())


@router.get("/jobs/{job_id}")
async def job(job_id: JobId, _: Instructor, service: Service) -> dict[str, Any]:
    """A job with its full timeline (every transition: time, worker, reason)."""
    found = await service.job(job_id)
    shown: dict[str, Any] = found.model_dump(
        mode="json", exclude={"prompt", "extra_data", "node_types", "models"}
    )
    return shown | {"extra_keys": sorted(k for k in found.extra_data if k not in SECRET_EXTRA)}


@router.get("/jobs/{job_id}/preview")
async def preview(job_id: JobId, _: Instructor, service: Service) -> Response:
    mime, image = await service.preview(job_id)
    return Response(image, media_type=mime, headers={"Cache-Control": "no-store"})


@router.post("/queue/pause")
async def pause(account: Instructor, service: Service) -> Done:
    await service.pause(account.name)
    return Done()


@router.post("/queue/resume")
async def resume(account: Instructor, service: Service) -> Done:
    await service.resume(account.name)
    return Done()


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: JobId, account: Instructor, service: Service) -> Done:
    await service.cancel(job_id, account.name)
    return Done()


@router.post("/jobs/{job_id}/front")
async def front(job_id: JobId, account: Instructor, service: Service) -> Done:
    await service.move_to_front(job_id, account.name)
    return Done()


@router.post("/jobs/{job_id}/priority")
async def priority(job_id: JobId, body: Priority, account: Instructor, service: Service) -> Done:
    await service.set_priority(job_id, body.priority, account.name)
    return Done()


@router.post("/workers/{worker_id}/drain")
async def drain(worker_id: WorkerId, account: Instructor, service: Service) -> Done:
    """The worker finishes its job and takes no more."""
    await service.drain_worker(worker_id, account.name)
    return Done()


@router.post("/workers/{worker_id}/resume")
async def resume_worker(worker_id: WorkerId, account: Instructor, service: Service) -> Done:
    """A drained worker takes work again."""
    await service.resume_worker(worker_id, account.name)
    return Done()


@router.delete("/workers/{worker_id}")
async def remove(worker_id: WorkerId, account: Instructor, service: Service) -> Done:
    """Forget the worker now; its running job goes back to the queue."""
    await service.remove_worker(worker_id, account.name)
    return Done()


@router.put("/users/{user}/limits")
async def limits(user: UserId, body: Limits, account: Instructor, service: Service) -> Done:
    await service.set_user_limits(user, body.max_queued, body.max_running, account.name)
    return Done()


@router.post("/users/{user}/pause")
async def pause_user(user: UserId, body: UserPause, account: Instructor, service: Service) -> Done:
    await service.pause_user(user, body.paused, account.name)
    return Done()


@router.post("/users/{user}/sign-out")
async def sign_out_user(user: UserId, account: Instructor, accounts: AccountCases) -> Done:
    """End every session of `user` at once (open pages and sockets too); they log in again.
    HTTP Basic is no session: a password reset (`comfy-workshop users reset`) ends that."""
    await accounts.sign_out(user, account.name)
    return Done()


@router.post("/sessions/sign-out")
async def sign_out_room(account: Instructor, accounts: AccountCases) -> SignedOut:
    """End every participant's sessions (the end of a workshop; shared laptops). Instructors
    stay signed in: the dashboard that asks must keep working; sign yourself out with
    `users/{you}/sign-out`."""
    return SignedOut(users=await accounts.sign_out_room(account.name))


@router.post("/broadcast")
async def broadcast(body: Broadcast, account: Instructor, service: Service) -> Done:
    """Shown in every participant's ComfyUI until replaced; an empty message clears it."""
    await service.broadcast(body.message, account.name)
    return Done()


@router.get("/endpoints")
async def list_endpoints(_: Instructor, service: Service) -> list[dict[str, object]]:
    """Push endpoints; header values are never shown."""
    return [e.shown() for e in await service.endpoints()]


@router.put("/endpoints/{name}")
async def put_endpoint(
    name: str, body: EndpointBody, account: Instructor, service: Service
) -> dict[str, object]:
    """Add or replace a push endpoint, live."""
    config = endpoint(name, body.url, **body.model_dump(exclude={"url", "headers"}),
                      headers=tuple(body.headers))  # fmt: skip
    await service.add_endpoint(config, account.name)
    return config.shown()


@router.delete("/endpoints/{name}")
async def delete_endpoint(name: str, account: Instructor, service: Service) -> Done:
    await service.remove_endpoint(name, account.name)
    return Done()
