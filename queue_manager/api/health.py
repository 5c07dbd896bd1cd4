"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .deps import Service

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(response: Response, service: Service) -> dict[str, bool]:
    """Redis answers and the background tasks (event hub, reaper) are running."""
    ready = await service.ready()
    if not all(ready.values()):
        response.status_code = 503
    return ready
