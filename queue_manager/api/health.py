"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError

from queue_manager.service.queue import QueueService

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, object]:
    """Redis answers and the background tasks (event hub, reaper) are running."""
    service: QueueService = request.app.state.service
    try:
        redis_ok = bool(await service.redis.ping())
    except (RedisError, OSError):
        redis_ok = False
    tasks_ok = service.background_ok()
    if not (redis_ok and tasks_ok):
        response.status_code = 503
    return {"redis": redis_ok, "background": tasks_ok}
