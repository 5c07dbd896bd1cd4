"""`GET /metrics`: Prometheus text format (restrict it to the monitoring host in nginx)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .deps import Service

router = APIRouter(tags=["health"])


@router.get("/metrics")
async def metrics(service: Service) -> Response:
    return Response(await service.metrics_text(), media_type=CONTENT_TYPE_LATEST)
